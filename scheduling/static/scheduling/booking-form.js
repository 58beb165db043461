// The booking form: the service list follows the chosen professional (their services, and
// those naming nobody). The map comes from the page (json_script "services-by-professional");
// without JavaScript every service stays listed and the server refuses a wrong pair.
(function () {
  "use strict";
  function ready() {
    var data = document.getElementById("services-by-professional");
    var professional = document.getElementById("id_professional");
    var service = document.getElementById("id_service");
    if (!data || !professional || !service) { return; }
    var map = JSON.parse(data.textContent);
    function follow() {
      var offered = map[professional.value];
      Array.prototype.forEach.call(service.options, function (option) {
        if (!option.value) { return; }  // the empty choice stays
        var shown = !offered || offered.indexOf(Number(option.value)) !== -1;
        option.hidden = !shown;
        option.disabled = !shown;
      });
      var chosen = service.options[service.selectedIndex];
      if (chosen && chosen.disabled) { service.value = ""; }
    }
    professional.addEventListener("change", follow);
    follow();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
