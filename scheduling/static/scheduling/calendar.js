/* The receptionist's calendar (scheduling/admin/calendar.py): the vendored Event Calendar
 * component, fed by the admin's JSON, polled with an ETag so other people's changes appear
 * within seconds; booking side panel; moving by drag and drop or by the keyboard dialog;
 * one actions menu per card. Times are the clinic's wall-clock time throughout: the server
 * sends them without an offset and reads them back in the clinic's zone, so the browser's
 * own zone never shifts them. No framework, no CDN. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("cal-config").textContent);
  var L = config.labels;
  var csrf = (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || "";
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  var state = {
    date: config.date, view: config.view, by: config.by, etag: null, data: null,
    busy: false, weekProfessionals: [], booking: null, moving: null, encaixe: false
  };

  // --- Small helpers ------------------------------------------------------------------
  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_m, k) { return values[k] == null ? "" : values[k]; });
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function isoDay(d) { return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()); }
  function dayOf(s) { var p = s.split("-"); return new Date(Date.UTC(+p[0], +p[1] - 1, +p[2])); }
  function addDays(s, n) { var d = dayOf(s); d.setUTCDate(d.getUTCDate() + n); return isoDay(d); }
  function monday(s) { var d = dayOf(s); return addDays(s, -((d.getUTCDay() + 6) % 7)); }
  /** A Date whose local fields are the clinic's wall-clock time → "YYYY-MM-DDTHH:MM:SS". */
  function wall(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":00";
  }
  function hhmm(s) { return s.slice(11, 16); }
  function ddmm(s) { return s.slice(8, 10) + "/" + s.slice(5, 7); }
  function longDate(s) {
    return dayOf(s).toLocaleDateString("pt-BR", { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function say(message) {
    var box = $("#cal-messages"); box.textContent = ""; box.appendChild(el("p", { text: message }));
    clearTimeout(say.timer); say.timer = setTimeout(function () { box.textContent = ""; }, 8000);
  }
  function complain(message) {
    var box = $("#cal-errors"); box.textContent = ""; box.appendChild(el("p", { text: message }));
    clearTimeout(complain.timer); complain.timer = setTimeout(function () { box.textContent = ""; }, 12000);
  }
  function post(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { if (fields[k] != null) body.append(k, fields[k]); });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return { error: L.error }; }).then(function (data) {
        data._status = r.status; return data;
      });
    });
  }
  function urlFor(template, id, action) {
    var u = template.replace("/0/", "/" + id + "/");
    return action ? u.replace(/\/[\w-]+\/$/, "/" + action + "/") : u;
  }
  /** "+5511987654321" → "(11) 98765-4321": how a Brazilian desk reads a phone. */
  function phone(value) {
    var m = /^\+55(\d{2})(\d{4,5})(\d{4})$/.exec(value || "");
    return m ? "(" + m[1] + ") " + m[2] + "-" + m[3] : (value || "");
  }
  function byId(list, id) { return list.filter(function (x) { return String(x.id) === String(id); })[0]; }
  function isPast(wallStr) { return state.data && wallStr < state.data.now; }

  // --- The component --------------------------------------------------------------------
  var viewNames = { day: "resourceTimeGridDay", week: "resourceTimeGridWeek", list: "listDay" };
  var host = document.getElementById("calendar");
  var ec = EventCalendar.create(host, {
    view: viewNames[state.view],
    date: state.date,
    locale: "pt-BR",
    firstDay: 1,
    headerToolbar: { start: "", center: "", end: "" },
    allDaySlot: false,
    nowIndicator: true,
    slotDuration: "00:15:00",
    slotLabelInterval: "01:00:00",
    slotLabelFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    dayHeaderFormat: { weekday: "short", day: "numeric", month: "numeric" },
    datesAboveResources: true,
    resources: [],
    events: [],
    editable: config.canChange,
    eventStartEditable: config.canChange,
    eventDurationEditable: config.canChange,
    eventLongPressDelay: 400,
    dragScroll: true,
    snapDuration: "00:05:00",
    height: "100%",
    buttonText: { today: L.today || "Hoje", prev: "Anterior", next: "Próximo", close: "Fechar" },
    dragConstraint: function (info) { return !isPast(wall(info.event.start)); },
    resizeConstraint: function (info) { return !isPast(wall(info.event.start)); },
    eventContent: card,
    eventClick: function (info) {
      if (info.event.display === "background") return;
      // Enter on a card: the menu's first item takes the focus, and the same key press
      // must not activate it.
      if (info.jsEvent && info.jsEvent.type === "keydown") info.jsEvent.preventDefault();
      openMenu(info.event, info.el || (info.jsEvent && info.jsEvent.currentTarget));
    },
    eventDidMount: function (info) {
      var p = info.event.extendedProps;
      if (p.kind !== "appointment") { info.el.setAttribute("aria-hidden", "true"); return; }
      info.el.setAttribute("aria-label", p.icon + " " + p.statusLabel + ", " + hhmm(wall(info.event.start)) + "–" +
        hhmm(wall(info.event.end)) + ", " + p.patient + ", " + p.service + ", " + p.professional +
        (p.badges.length ? ", " + p.badges.map(function (b) { return b.label; }).join(", ") : ""));
      info.el.setAttribute("aria-haspopup", "menu");
      info.el.dataset.appointment = info.event.id;
    },
    dateClick: function (info) {
      if (!config.canAdd) return;
      var start = info.dateStr.slice(0, 19);
      if (isPast(start)) { complain(L.past); return; }
      if (state.data && state.data.closed[start.slice(0, 10)]) { complain(L.closedTime); return; }
      var professional = state.by === "professional" && info.resource ? info.resource.id : null;
      var room = state.by === "room" && info.resource && info.resource.id !== "none" ? info.resource.id : null;
      openPanel({ start: start, professional: professional, room: room });
    },
    eventDrop: function (info) { confirmMove(info, false); },
    eventResize: function (info) { confirmMove(info, true); },
    eventDragStart: function () { state.busy = true; },
    eventResizeStart: function () { state.busy = true; },
    resourceLabelContent: function (info) {
      var p = info.resource.extendedProps || {};
      var nodes = [el("span", { className: "cal-res-name", text: info.resource.title })];
      if (p.specialty) nodes.push(el("span", { className: "cal-res-sub", text: p.specialty }));
      var wrap = el("span", { className: "cal-res" }, nodes);
      if (p.color) wrap.style.borderBottomColor = p.color;
      return { domNodes: [wrap] };
    }
  });

  // The component marks its grid up as an ARIA table whose rows and cells do not nest as
  // the roles require (vkurko/calendar#161): screen readers get a broken table. Its roles
  // are removed; the cards carry their own labels (time, patient, professional, status).
  var brokenRoles = { table: 1, rowgroup: 1, row: 1, columnheader: 1, rowheader: 1, cell: 1, list: 1, listitem: 1 };
  function stripRoles(root) {
    [root].concat($$("[role],[aria-colspan],[aria-colindex]", root)).forEach(function (node) {
      if (brokenRoles[node.getAttribute("role")]) node.removeAttribute("role");
      node.removeAttribute("aria-colindex"); node.removeAttribute("aria-colspan");
    });
  }
  var stripping = false;  // once per frame, however many nodes the component changed
  new MutationObserver(function () {
    if (stripping) return;
    stripping = true;
    requestAnimationFrame(function () { stripping = false; stripRoles(host); });
  }).observe(host, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["role", "aria-colspan", "aria-colindex"]
  });

  function card(info) {
    var e = info.event, p = e.extendedProps;
    if (p.kind !== "appointment") {
      return e.title ? { domNodes: [el("span", { className: "cal-band-label", text: e.title })] } : { html: "" };
    }
    var badges = p.badges.map(function (b) { return el("span", { className: "cal-badge cal-badge-" + b.code, text: b.label }); });
    var line1 = el("span", { className: "cal-line1" }, [
      el("span", { className: "cal-icon", "aria-hidden": "true", text: p.icon }),
      el("span", { className: "cal-time", text: hhmm(wall(e.start)) }),
      el("strong", { className: "cal-patient", text: p.patient })
    ]);
    var line2 = el("span", { className: "cal-line2" }, [el("span", { text: p.service + (state.by === "room" ? " · " + p.professional : "") })].concat(badges));
    return { domNodes: [line1, line2] };
  }

  // --- Loading and live updates ---------------------------------------------------------
  function range() {
    if (state.view === "week") { var m = monday(state.date); return [m, addDays(m, 7)]; }
    return [state.date, addDays(state.date, 1)];
  }
  function load(force) {
    if (state.busy && !force) return Promise.resolve();
    var r = range();
    var params = new URLSearchParams({ start: r[0], end: r[1], by: state.by });
    if (state.view === "week" && state.by === "professional") {
      state.weekProfessionals.forEach(function (id) { params.append("professional", id); });
    }
    var headers = { "Accept": "application/json" };
    var key = params.toString();
    if (!force && state.etag && state.key === key) headers["If-None-Match"] = state.etag;
    return fetch(config.urls.events + "?" + key, { credentials: "same-origin", headers: headers }).then(function (r) {
      setLive(true);
      if (r.status === 304) return;
      if (!r.ok) throw new Error(r.status);
      state.etag = r.headers.get("ETag"); state.key = key;
      return r.json().then(draw);
    }).catch(function () { setLive(false); });
  }
  function draw(data) {
    var first = !state.data;
    state.data = data;
    ec.setOption("timeZone", data.offset);
    if (ec.getOption("slotMinTime") !== data.slotMinTime) ec.setOption("slotMinTime", data.slotMinTime);
    if (ec.getOption("slotMaxTime") !== data.slotMaxTime) ec.setOption("slotMaxTime", data.slotMaxTime);
    ec.setOption("resources", data.resources);
    ec.setOption("events", data.events);
    var closed = data.closed[state.date];
    $("#cal-summary").textContent = fmt(L.appointments, { count: data.count }) + (closed ? " · " + fmt(L.closed, { reason: closed }) : "");
    if (state.view === "week") {
      $("#cal-date-label").textContent = ddmm(monday(state.date)) + " – " + ddmm(addDays(monday(state.date), 6)) +
        " · " + data.resources.map(function (r) { return r.title; }).join(", ");
    }
    if (first) { fit(); scrollToStart(); }
  }
  function setLive(ok) {
    var live = $("#cal-live");
    live.textContent = ok ? L.live : L.offline;
    live.classList.toggle("cal-offline", !ok);
  }
  setInterval(function () {
    if (!document.hidden && !$("#cal-move").open && !state.busy) load(false);
  }, config.pollSeconds * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) load(false); });

  // --- Fitting the day on the screen ----------------------------------------------------
  // Four hours (08:00–12:00) of every column fit without scrolling at 1366×768: the slot
  // height follows the room left under the toolbar.
  function fit() {
    var top = host.getBoundingClientRect().top + window.scrollY;
    var height = Math.max(360, window.innerHeight - top - 8);
    host.style.height = height + "px";
    if (state.view !== "list") {
      var header = 52;
      var slot = Math.max(14, Math.floor((height - header) / 17));
      ec.setOption("slotHeight", slot);
    }
  }
  function scrollToStart() {
    if (!state.data) return;
    var target = state.data.slotMinTime;
    if (state.date === state.data.today && state.view !== "list") {
      var hour = Math.max(+state.data.slotMinTime.slice(0, 2), +state.data.now.slice(11, 13) - 1);
      target = pad(hour) + ":00:00";
    } else if (state.data.slotMinTime < "08:00:00") {
      target = "08:00:00";
    }
    ec.setOption("scrollTime", target);
  }
  window.addEventListener("resize", function () { fit(); });

  // --- Navigation -------------------------------------------------------------------------
  function go(date, view, by) {
    state.date = date || state.date;
    state.view = view || state.view;
    state.by = by || state.by;
    if (state.view === "week" && state.by === "professional" && !state.weekProfessionals.length) {
      // Seven days of every professional would be a wall of thin columns: the week starts
      // with one, and the list beside it adds others.
      var firstBox = $("#cal-week-professionals input");
      if (firstBox) { firstBox.checked = true; state.weekProfessionals = [firstBox.value]; }
    }
    state.etag = null;
    ec.setOption("view", viewNames[state.view]);
    ec.setOption("date", state.date);
    $("#cal-date").value = state.date;
    var label = state.view === "week" ? ddmm(monday(state.date)) + " – " + ddmm(addDays(monday(state.date), 6)) : longDate(state.date);
    $("#cal-date-label").textContent = label;
    $$("[data-view]").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.view === state.view)); });
    $$("[data-by]").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.by === state.by)); });
    $(".cal-week-who").hidden = !(state.view === "week" && state.by === "professional");
    var url = new URL(window.location.href);
    url.searchParams.set("date", state.date); url.searchParams.set("view", state.view); url.searchParams.set("by", state.by);
    url.searchParams.delete("new");
    history.replaceState(null, "", url);
    state.data = null;
    fit();
    return load(true);
  }
  function step(n) { go(addDays(state.date, state.view === "week" ? 7 * n : n)); }
  $$("[data-nav]").forEach(function (b) {
    b.addEventListener("click", function () {
      if (b.dataset.nav === "today") go(config.today); else step(b.dataset.nav === "next" ? 1 : -1);
    });
  });
  $$("[data-view]").forEach(function (b) { b.addEventListener("click", function () { go(null, b.dataset.view); }); });
  $$("[data-by]").forEach(function (b) { b.addEventListener("click", function () { go(null, null, b.dataset.by); }); });
  $("#cal-date").addEventListener("change", function (e) { if (e.target.value) go(e.target.value); });
  $("#cal-week-professionals").addEventListener("change", function () {
    state.weekProfessionals = $$("input:checked", $("#cal-week-professionals")).map(function (o) { return o.value; });
    state.etag = null; load(true);
  });
  var help = $("[data-help]");
  help.addEventListener("click", function () {
    var box = $("#cal-help"); box.hidden = !box.hidden; help.setAttribute("aria-expanded", String(!box.hidden));
  });
  var newButton = $("[data-new]");
  if (newButton) newButton.addEventListener("click", function () { openPanel({}); });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { closeMenu(); closePanel(); return; }
    var tag = (e.target.tagName || "").toLowerCase();
    if (e.ctrlKey || e.metaKey || e.altKey || tag === "input" || tag === "select" || tag === "textarea" || $("#cal-move").open) return;
    var key = e.key.toLowerCase();
    if (key === "h") go(config.today);
    else if (e.key === "ArrowRight" && !e.target.closest(".cal-menu")) step(1);
    else if (e.key === "ArrowLeft" && !e.target.closest(".cal-menu")) step(-1);
    else if (key === "n" && config.canAdd) { e.preventDefault(); openPanel({}); }
    else if (key === "d") go(null, "day");
    else if (key === "s") go(null, "week");
    else if (key === "l") go(null, "list");
    else if (e.key === "?") help.click();
  });

  // --- Actions menu -----------------------------------------------------------------------
  var menu = $("#cal-menu"), menuOpener = null;
  function openMenu(event, anchor) {
    var p = event.extendedProps, start = wall(event.start);
    var items = $("#cal-menu-items"); items.textContent = "";
    $("#cal-menu-title").textContent = fmt(L.actionsOf, { patient: p.patient, time: ddmm(start) + " " + hhmm(start) }) +
      " — " + p.icon + " " + p.statusLabel;
    function item(label, onClick, href) {
      var node = href ? el("a", { role: "menuitem", href: href, text: label, tabindex: "-1" })
        : el("button", { type: "button", role: "menuitem", text: label, tabindex: "-1" });
      if (href && href.indexOf("https://") === 0) { node.setAttribute("target", "_blank"); node.setAttribute("rel", "noopener"); }
      if (onClick) node.addEventListener("click", function (e) { e.preventDefault(); closeMenu(); onClick(); });
      items.appendChild(node);
    }
    if (config.canChange) {
      p.actions.forEach(function (name) {
        if (name === "start" || name === "complete") return; // the professional's, not the desk's
        item(config.actions[name], function () { transition(event, name); });
      });
      if (p.movable) item(L.move, function () { openMove(event); });
    }
    if (p.phone) item(L.message, null, "https://wa.me/" + p.phone);
    item(L.open, null, p.url);
    menuOpener = document.activeElement;
    menu.hidden = false;
    var box = (anchor && anchor.getBoundingClientRect) ? anchor.getBoundingClientRect() : { left: 100, bottom: 200, top: 200 };
    var left = Math.min(window.innerWidth - 280, box.left + window.scrollX);
    menu.style.left = Math.max(8, left) + "px";
    menu.style.top = (box.bottom + window.scrollY + 4) + "px";
    var first = $("[role=menuitem]", menu);
    if (first) setTimeout(function () { first.focus(); }, 0);
  }
  function closeMenu() {
    if (menu.hidden) return;
    menu.hidden = true;
    if (menuOpener && menuOpener.focus) menuOpener.focus();
  }
  menu.addEventListener("keydown", function (e) {
    var entries = $$("[role=menuitem]", menu), i = entries.indexOf(document.activeElement);
    if (e.key === "ArrowDown") { e.preventDefault(); entries[(i + 1) % entries.length].focus(); }
    else if (e.key === "ArrowUp") { e.preventDefault(); entries[(i - 1 + entries.length) % entries.length].focus(); }
    else if (e.key === "Tab") { closeMenu(); }
  });
  document.addEventListener("click", function (e) {
    if (!menu.hidden && !menu.contains(e.target) && !e.target.closest(".ec-event")) closeMenu();
  });
  function transition(event, name) {
    var reason = "";
    if (name === "cancel") {
      reason = window.prompt(L.cancelReason, "");
      if (reason === null) return;
    }
    post(urlFor(config.urls.status, event.id, name), { reason: reason }).then(function (data) {
      if (data.error) complain(data.error); else say(data.message);
      load(true);
    });
  }

  // --- Moving: drag and drop, resize, or the keyboard dialog -----------------------------
  var moveDialog = $("#cal-move");
  function confirmMove(info, resized) {
    var e = info.event, p = e.extendedProps;
    var resource = info.newResource ? info.newResource.id : null;
    var professional = state.by === "professional" && resource ? byId(config.professionals, resource) : null;
    state.moving = {
      id: e.id, start: wall(e.start), end: wall(e.end), revert: info.revert, resized: resized,
      resource: resource, patient: p.patient, professionalName: professional ? professional.name : p.professional
    };
    showMoveDialog(true);
  }
  function openMove(event) {
    var p = event.extendedProps;
    state.moving = {
      id: event.id, start: wall(event.start), end: null, revert: null, resized: false, resource: null,
      patient: p.patient, professionalName: p.professional, keyboard: true,
      professionalId: state.by === "professional" && event.resourceIds ? event.resourceIds[0] : null
    };
    showMoveDialog(false);
  }
  function showMoveDialog(fromDrag) {
    var m = state.moving;
    $("#cal-move-error").textContent = "";
    $("#cal-move-encaixe").hidden = true;
    state.encaixeWarning = "";
    $(".cal-move-fields", moveDialog).hidden = fromDrag;
    if (fromDrag) {
      $("#cal-move-what").textContent = fmt(L.moveQuestion, {
        patient: m.patient, time: ddmm(m.start) + " " + hhmm(m.start) + (m.resized ? "–" + hhmm(m.end) : ""), professional: m.professionalName
      });
    } else {
      $("#cal-move-what").textContent = fmt(L.moveHint, { patient: m.patient });
      $("#cal-move-date").value = m.start.slice(0, 10);
      $("#cal-move-time").value = hhmm(m.start);
      var select = $("#cal-move-professional");
      if (m.professionalId) select.value = m.professionalId;
      else { var chosen = config.professionals.filter(function (x) { return x.name === m.professionalName; })[0]; if (chosen) select.value = chosen.id; }
    }
    state.busy = true;
    moveDialog.showModal();
  }
  moveDialog.addEventListener("close", function () {
    var m = state.moving, how = moveDialog.returnValue;
    moveDialog.returnValue = "";
    if (!m) { state.busy = false; return; }
    if (how !== "move" && how !== "encaixe") { finishMove(false); return; }
  });
  $("#cal-move-form").addEventListener("submit", function (e) {
    var how = e.submitter ? e.submitter.value : "move";
    if (how === "cancel") return; // the dialog closes, and the card goes back
    e.preventDefault();
    var m = state.moving, fields = { notify: $("#cal-move-notify").checked ? "1" : "0", by: state.by };
    if (m.keyboard) {
      var d = $("#cal-move-date").value, t = $("#cal-move-time").value;
      if (!d || !t) { $("#cal-move-error").textContent = L.chooseTime; return; }
      fields.start = d + "T" + t + ":00";
      fields.resource = $("#cal-move-professional").value;
      fields.by = "professional";
    } else {
      fields.start = m.start;
      if (m.resized) fields.end = m.end;
      if (m.resource != null) fields.resource = m.resource;
    }
    if (isPast(fields.start)) { $("#cal-move-error").textContent = L.past; return; }
    if (how === "encaixe") { fields.encaixe = "1"; fields.warning = state.encaixeWarning; }
    post(urlFor(config.urls.move, m.id), fields).then(function (data) {
      if (data.error) {
        var text = fmt(L.refused, { reason: data.error });
        if (data.encaixe_possible) {
          state.encaixeWarning = data.error;
          text = fmt(L.encaixeWarning, { reason: text });
          $("#cal-move-encaixe").hidden = false;
        }
        $("#cal-move-error").textContent = text;
        if (!m.keyboard) {
          // A refused drag snaps back at once, with the reason in words; the dialog stays
          // open only to offer the encaixe.
          if (m.revert) { m.revert(); m.revert = null; }
          complain(text);
          if (!data.encaixe_possible) { moveDialog.close("refused"); }
        }
        return;
      }
      state.moving = null;
      moveDialog.close("done");
      finishMove(true);
      say(data.message);
    });
  });
  function finishMove(done) {
    var m = state.moving;
    if (!done && m && m.revert) m.revert();
    state.moving = null;
    state.busy = false;
    load(true);
  }

  // --- Booking panel ----------------------------------------------------------------------
  var panel = $("#cal-panel"), form = $("#cal-book"), panelOpener = null;
  function openPanel(where) {
    closeMenu();
    panelOpener = document.activeElement;
    form.reset();
    $$(".cal-error", form).forEach(function (n) { n.textContent = ""; });
    $("#cal-encaixe").hidden = true; state.encaixe = false;
    choosePatient(null);
    var newFields = $("#cal-new-fields"); if (newFields) { newFields.hidden = true; $("#cal-new-patient").setAttribute("aria-expanded", "false"); }
    var professional = where.professional || (config.professionals[0] || {}).id;
    $("#cal-professional").value = professional;
    if (where.room) $("#cal-room").value = where.room;
    var start = where.start || (state.data ? (state.date > state.data.today ? state.date + "T00:00:00" : state.data.now) : null);
    state.booking = { requested: where.start || null, from: start };
    fillServices();
    panel.hidden = false;
    document.body.classList.add("cal-panel-open");
    $("#cal-panel-title").textContent = where.start
      ? fmt(L.booking, { time: ddmm(where.start) + " " + hhmm(where.start), professional: $("#cal-professional").selectedOptions[0].text })
      : L.newBooking;
    $("#cal-patient-q").focus();
  }
  function closePanel() {
    if (panel.hidden) return;
    panel.hidden = true;
    document.body.classList.remove("cal-panel-open");
    if (panelOpener && panelOpener.focus) panelOpener.focus();
  }
  $$("[data-close]", panel).forEach(function (b) { b.addEventListener("click", closePanel); });
  function fillServices() {
    var professional = $("#cal-professional").value;
    var select = $("#cal-service"), previous = select.value;
    select.textContent = "";
    var offered = config.services.filter(function (s) { return s.professionals.indexOf(+professional) >= 0; });
    offered.forEach(function (s) { select.appendChild(el("option", { value: s.id, text: s.name + " (" + s.minutes + " min)" })); });
    if (offered.some(function (s) { return String(s.id) === previous; })) select.value = previous;
    loadTimes();
  }
  $("#cal-professional").addEventListener("change", fillServices);
  $("#cal-service").addEventListener("change", loadTimes);
  function loadTimes() {
    var box = $("#cal-times"); box.textContent = "";
    $("#cal-start").value = "";
    var service = $("#cal-service").value, professional = $("#cal-professional").value;
    if (!service) return;
    var params = new URLSearchParams({ professional: professional, service: service, from: state.booking.from || "" });
    fetch(config.urls.times + "?" + params, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
      box.textContent = "";
      var times = data.times.slice();
      var requested = state.booking.requested;
      if (requested && !times.some(function (t) { return t.start === requested; })) {
        // The clicked time is not a free one (busy, or off the grid): offered first anyway,
        // so that reception can squeeze the patient in after the warning.
        times.unshift({ start: requested, label: ddmm(requested) + " " + hhmm(requested), requested: true });
      }
      if (!times.length) { box.appendChild(el("p", { className: "cal-help-text", text: L.noTimes })); return; }
      times.forEach(function (t, i) {
        var b = el("button", { type: "button", className: "cal-time-button", "aria-pressed": "false", text: t.label });
        b.dataset.start = t.start;
        if (t.requested) b.classList.add("cal-requested");
        b.addEventListener("click", function () { pickTime(b); });
        box.appendChild(b);
        if ((requested && t.start === requested) || (!requested && i === 0)) pickTime(b, true);
      });
    });
  }
  function pickTime(button, quiet) {
    $$(".cal-time-button", panel).forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    button.setAttribute("aria-pressed", "true");
    $("#cal-start").value = button.dataset.start;
    $("#cal-encaixe").hidden = true; state.encaixe = false;
    if (!quiet) $("#err-start").textContent = "";
  }

  // Patient search: a combobox listing the clinic's patients by name, CPF or phone.
  var q = $("#cal-patient-q"), results = $("#cal-patient-results"), searchTimer = null, active = -1;
  q.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 200);
  });
  function search() {
    var term = q.value.trim();
    if (term.length < 2) { showResults([]); return; }
    fetch(config.urls.patients + "?q=" + encodeURIComponent(term), { credentials: "same-origin" })
      .then(function (r) { return r.json(); }).then(function (data) { if (q.value.trim() === term) showResults(data.results, true); });
  }
  function showResults(list, searched) {
    results.textContent = ""; active = -1;
    list.forEach(function (p, i) {
      var details = [p.cpf, phone(p.phone), p.birth].filter(Boolean).join(" · ");
      var option = el("li", { role: "option", id: "cal-opt-" + i, "aria-selected": "false" }, [
        el("strong", { text: p.name }), el("span", { className: "cal-res-sub", text: details })
      ]);
      option.addEventListener("mousedown", function (e) { e.preventDefault(); choosePatient(p); });
      results.appendChild(option);
    });
    if (searched && !list.length) results.appendChild(el("li", { className: "cal-none", text: L.noResults }));
    results.hidden = !results.children.length;
    q.setAttribute("aria-expanded", String(!results.hidden));
    results._data = list;
  }
  q.addEventListener("keydown", function (e) {
    var options = $$("[role=option]", results);
    if (e.key === "ArrowDown" && options.length) { e.preventDefault(); active = (active + 1) % options.length; }
    else if (e.key === "ArrowUp" && options.length) { e.preventDefault(); active = (active - 1 + options.length) % options.length; }
    else if (e.key === "Enter") {
      e.preventDefault();
      if (options.length) choosePatient(results._data[Math.max(active, 0)]);
      return;
    } else return;
    options.forEach(function (o, i) { o.setAttribute("aria-selected", String(i === active)); });
    q.setAttribute("aria-activedescendant", "cal-opt-" + active);
  });
  function choosePatient(p) {
    var chosen = $("#cal-patient-chosen");
    $("#cal-patient").value = p ? p.id : "";
    results.hidden = true; q.setAttribute("aria-expanded", "false"); q.removeAttribute("aria-activedescendant");
    chosen.textContent = "";
    if (p) {
      var change = el("button", { type: "button", className: "cal-link", text: L.change });
      change.addEventListener("click", function () { choosePatient(null); q.focus(); });
      chosen.appendChild(el("strong", { text: "✓ " + p.name }));
      chosen.appendChild(document.createTextNode(" " + [p.cpf, phone(p.phone)].filter(Boolean).join(" · ") + " "));
      chosen.appendChild(change);
      q.value = p.name;
      $("#err-patient").textContent = "";
      var newFields = $("#cal-new-fields"); if (newFields) newFields.hidden = true;
      $("#cal-service").focus();
    }
    chosen.hidden = !p;
  }
  var newPatient = $("#cal-new-patient");
  if (newPatient) newPatient.addEventListener("click", function () {
    var box = $("#cal-new-fields"); box.hidden = !box.hidden;
    newPatient.setAttribute("aria-expanded", String(!box.hidden));
    if (!box.hidden) { choosePatient(null); $("#cal-new-name").value = /\d/.test(q.value) ? "" : q.value; $("#cal-new-name").focus(); }
  });

  form.addEventListener("submit", function (e) { e.preventDefault(); book(false); });
  $("#cal-encaixe-confirm").addEventListener("click", function () { book(true); });
  function book(encaixe) {
    $$(".cal-error", form).forEach(function (n) { n.textContent = ""; });
    var data = new FormData(form), fields = {};
    data.forEach(function (v, k) { fields[k] = v; });
    if ($("#cal-new-fields") && $("#cal-new-fields").hidden) { delete fields.new_name; delete fields.new_phone; delete fields.new_cpf; }
    if (!fields.start) { $("#err-start").textContent = L.chooseTime; return; }
    if (encaixe) { fields.encaixe = "1"; fields.warning = state.encaixeText || ""; }
    post(config.urls.book, fields).then(function (res) {
      if (res.error) {
        Object.keys(res.fields || {}).forEach(function (k) { var n = $("#err-" + k); if (n) n.textContent = res.fields[k]; });
        if (res.encaixe_possible && !encaixe) {
          state.encaixeText = res.error;
          $("#cal-encaixe-text").textContent = fmt(L.encaixeWarning, { reason: res.error });
          $("#cal-encaixe").hidden = false;
          $("#cal-encaixe-confirm").focus();
        } else {
          $("#cal-book-error").textContent = res.error;
        }
        return;
      }
      closePanel();
      say(res.message);
      load(true);
    });
  }

  // The home's "New booking" opens the panel at once (once: the address forgets it).
  var wantsNew = new URLSearchParams(window.location.search).get("new") === "1" && config.canAdd;
  go(state.date, state.view, state.by).then(function () { if (wantsNew) openPanel({}); });
})();
