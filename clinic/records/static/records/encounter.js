/* Autosave of the encounter's drafts (a static file: the staff pages' CSP forbids inline
   scripts). Two seconds after the author stops typing, the form is POSTed to its
   data-autosave-url; the answer says when it was saved or which fields are wrong.
   The CID-10 field suggests codes from the search endpoint. */
(function () {
  "use strict";
  var form = document.getElementById("encounter-form");
  if (!form) { return; }
  var status = document.getElementById("autosave-status");
  var url = form.getAttribute("data-autosave-url");
  var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var timer = null;

  function save() {
    timer = null;
    return fetch(url, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-CSRFToken": token, "X-Requested-With": "fetch" },
      credentials: "same-origin"
    }).then(function (response) {
      return response.json();
    }).then(function (data) {
      if (data.saved) {
        status.textContent = data.message;
      } else if (data.errors) {
        status.textContent = Object.keys(data.errors).map(function (k) {
          return data.errors[k].join(" ");
        }).join(" ");
      } else {
        status.textContent = data.error || "";
      }
    }).catch(function () {
      status.textContent = status.getAttribute("data-offline") || "…";
    });
  }

  form.addEventListener("input", function (event) {
    if (event.target.hasAttribute("data-template-picker")) { return; }
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(save, 2000);
  });

  // Choosing another template: save what was typed, then load the page with that
  // template's form (the answers of fields with the same key carry over).
  Array.prototype.forEach.call(
    document.querySelectorAll("select[data-template-picker]"),
    function (select) {
      select.addEventListener("change", function () {
        if (timer) { clearTimeout(timer); timer = null; }
        var picker = document.getElementById(select.getAttribute("form"));
        var go = function () { picker.submit(); };
        save().then(go, go);
      });
    }
  );

  var cid = form.querySelector("input[name=cid_principal]");
  var options = document.getElementById("cid-options");
  var searchUrl = options && options.getAttribute("data-search-url");
  if (cid && searchUrl) {
    var searchTimer = null;
    cid.addEventListener("input", function () {
      if (searchTimer) { clearTimeout(searchTimer); }
      searchTimer = setTimeout(function () {
        var term = cid.value.trim();
        if (term.length < 2) { return; }
        fetch(searchUrl + "?q=" + encodeURIComponent(term), { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            options.textContent = "";
            (data.results || []).forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.code;
              option.textContent = item.code + " " + item.description;
              options.appendChild(option);
            });
          });
      }, 250);
    });
  }
}());
