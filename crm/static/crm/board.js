/* The funnel board: drag a card to another column, or use its "Move to" form (keyboard,
 * screen readers, no JavaScript). Both post the same form; here it is sent with fetch and
 * the card and the counts follow without reloading. No inline script (the staff CSP). */
(function () {
  "use strict";
  var board = document.querySelector(".crm-board");
  if (!board) { return; }
  var status = document.getElementById("crm-board-status");
  var dragged = null;

  function say(text) { if (status) { status.textContent = text; } }

  function move(card, stage, reason) {
    var form = card.querySelector("form.crm-move");
    if (!form) { return Promise.resolve(false); }
    var data = new FormData(form);
    data.set("to", stage);
    if (reason !== undefined) { data.set("loss_reason", reason); }
    return fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!body.ok) { say(body.error); return false; }
        var column = board.querySelector('.crm-column[data-stage="' + body.status + '"] .crm-cards');
        column.insertBefore(card, column.firstChild);
        form.querySelector('select[name="to"]').value = body.status;
        Object.keys(body.counts).forEach(function (stage) {
          var badge = board.querySelector('[data-count-for="' + stage + '"]');
          if (badge) { badge.textContent = body.counts[stage]; }
        });
        var name = card.querySelector(".crm-card-name").textContent;
        var label = board.querySelector('.crm-column[data-stage="' + body.status + '"] h2').firstChild.textContent.trim();
        say(name + " → " + label);
        return true;
      });
    }).catch(function () { say(board.dataset.errorText || "Error"); return false; });
  }

  board.addEventListener("dragstart", function (event) {
    var card = event.target.closest(".crm-card");
    if (!card) { return; }
    dragged = card;
    card.classList.add("crm-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.lead);
  });
  board.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("crm-dragging"); }
    dragged = null;
    board.querySelectorAll(".crm-over").forEach(function (el) { el.classList.remove("crm-over"); });
  });
  board.addEventListener("dragover", function (event) {
    var column = event.target.closest(".crm-column");
    if (!column || !dragged) { return; }
    event.preventDefault();
    column.classList.add("crm-over");
  });
  board.addEventListener("dragleave", function (event) {
    var column = event.target.closest(".crm-column");
    if (column && !column.contains(event.relatedTarget)) { column.classList.remove("crm-over"); }
  });
  board.addEventListener("drop", function (event) {
    var column = event.target.closest(".crm-column");
    if (!column || !dragged) { return; }
    event.preventDefault();
    column.classList.remove("crm-over");
    var card = dragged;
    var reason;
    if (column.dataset.stage === "lost") {
      var select = card.querySelector('select[name="loss_reason"]');
      reason = select && select.value;
      if (!reason) {
        say(card.querySelector(".crm-card-name").textContent + ": " + (select ? select.previousElementSibling.textContent : "") + "?");
        select && select.focus();
        return;
      }
    }
    move(card, column.dataset.stage, reason);
  });
  // The keyboard's way: the card's own form, sent without reloading.
  board.addEventListener("submit", function (event) {
    var form = event.target.closest("form.crm-move");
    if (!form) { return; }
    event.preventDefault();
    var card = form.closest(".crm-card");
    move(card, form.querySelector('select[name="to"]').value).then(function (ok) {
      if (ok) { form.querySelector('select[name="to"]').focus(); }
    });
  });
})();
