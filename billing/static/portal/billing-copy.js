/* Portal billing pages: "Copy code" buttons ([data-copy] = id of the field to copy) and
   "Print" buttons ([data-print]). Both are rendered hidden and shown here, so without
   JavaScript the page has no dead buttons: the code stays selectable in its field and the
   browser's own menu prints. */
(function () {
  "use strict";

  function say(button, text) {
    var status = document.getElementById(button.getAttribute("data-copy") + "-status");
    if (status) {
      status.textContent = "";
      // A fresh text so screen readers announce it again on a second click.
      window.setTimeout(function () { status.textContent = text; }, 50);
    }
  }

  function copyOldWay(field) {
    field.focus();
    field.select();
    try {
      return document.execCommand("copy");
    } catch (e) {
      return false;
    }
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var copied = button.getAttribute("data-copied");
      var failed = button.getAttribute("data-failed");
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(
          function () { say(button, copied); },
          function () { say(button, copyOldWay(field) ? copied : failed); }
        );
      } else {
        say(button, copyOldWay(field) ? copied : failed);
      }
    });
  });

  document.querySelectorAll("[data-print]").forEach(function (button) {
    if (typeof window.print !== "function") {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
