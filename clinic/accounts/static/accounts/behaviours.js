/* Small behaviours of the admin's pages, as data- attributes instead of inline handlers
   (onclick=, onchange=…), which the staff pages' Content-Security-Policy refuses
   (config/security_headers.py):
   - <select data-submit-on-change>: submits its form when changed (the clinic switcher);
   - <button data-print>: prints the page (receipts);
   - <form data-confirm="Sure?">: asks before submitting. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var field = event.target.closest && event.target.closest("[data-submit-on-change]");
    if (field && field.form) { field.form.submit(); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-print]");
    if (button) { window.print(); }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);
})();
