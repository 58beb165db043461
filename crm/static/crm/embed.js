/* Cuidar lead form embed: <script src="https://<cuidar>/static/crm/embed.js"
 * data-form="https://<cuidar>/crm/form/<key>/" async></script>
 * Builds an iframe of the form where the script tag is, passing the host page's UTM
 * parameters, gclid/fbclid, referrer and address along. Without JavaScript, link to the
 * form (or embed the iframe yourself): it works the same. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.form) { return; }
  var url = new URL(script.dataset.form);
  var page = new URL(window.location.href);
  ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "ref"]
    .forEach(function (name) {
      var value = page.searchParams.get(name);
      if (value) { url.searchParams.set(name, value); }
    });
  if (document.referrer) { url.searchParams.set("referrer", document.referrer); }
  url.searchParams.set("landing_page", page.href);
  var frame = document.createElement("iframe");
  frame.src = url.href;
  frame.title = script.dataset.title || "Contato";
  frame.style.width = "100%";
  frame.style.border = "0";
  frame.style.minHeight = script.dataset.height || "720px";
  frame.setAttribute("loading", "lazy");
  script.parentNode.insertBefore(frame, script);
})();
