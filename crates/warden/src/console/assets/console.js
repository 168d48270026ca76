// Warden console: live updates without reload. Listens to /console/events (new ledger
// entries) and, on each, re-fetches the current page and swaps in its `data-live`
// sections (forms are outside them, so typing is never lost). Without JavaScript the
// pages are complete; a reload shows the same content.
(function () {
  "use strict";
  if (!window.EventSource || !document.body) return;
  var live = document.getElementById("live");
  var busy = false, again = false;
  function say(text) { if (live) { live.textContent = text; live.dataset.state = "live"; } }
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      var res = await fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (!res.ok) return;
      var doc = new DOMParser().parseFromString(await res.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (old) {
        var fresh = doc.getElementById(old.id);
        if (!fresh) return;
        // Keep the operator's ticks (e.g. proposals picked for a batch) across a refresh.
        var ticked = Array.prototype.map.call(old.querySelectorAll("input[type=checkbox][id]:checked"), function (c) { return c.id; });
        var node = document.importNode(fresh, true);
        ticked.forEach(function (id) { var c = node.querySelector("#" + CSS.escape(id)); if (c) c.checked = true; });
        old.replaceWith(node);
      });
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  var es = new EventSource("/console/events?after=" + encodeURIComponent(document.body.dataset.seq || "0"));
  es.addEventListener("open", function () { say("Live: changes appear here as they happen."); });
  es.addEventListener("error", function () { say("Live updates paused; reconnecting…"); });
  // An open stream per page left in the back/forward cache would use up the browser's
  // few HTTP/1.1 connections to this host: close it when the page is hidden, and
  // reload a page restored from that cache (it missed the events meanwhile).
  window.addEventListener("pagehide", function () { es.close(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) location.reload(); });
  es.addEventListener("ledger", function (e) {
    var ev = JSON.parse(e.data);
    say("Change #" + ev.seq + ": " + ev.action + " " + ev.object_kind + " by " + ev.actor);
    refresh();
  });
})();
