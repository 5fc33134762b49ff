// Keeps a console page live: every few seconds fetch the page's own fragment (?fragment=1)
// and put it in place of <main id="live">, keeping open <details> open. No framework.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.poll) { return; }
  var every = Number(live.dataset.every) || 2000;
  var updated = document.getElementById("updated");
  var refreshes = 0;
  var lastGood = "the page was drawn";

  function clock() { return new Date().toISOString().substring(11, 19) + " UTC"; }

  function refresh() {
    // A tab nobody looks at does not ask; it catches up as soon as it is shown again.
    if (document.hidden) { window.setTimeout(refresh, every); return; }
    fetch(live.dataset.poll, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/console/login"); return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"),
                                            function (d) { return d.id; });
        live.innerHTML = html;
        open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
        refreshes += 1;
        document.body.setAttribute("data-refreshes", String(refreshes));
        lastGood = clock();
        if (updated) { updated.textContent = "updated " + lastGood; updated.parentNode.classList.remove("stale"); }
      })
      .catch(function (error) {
        if (updated) { updated.textContent = "not updated since " + lastGood + " (" + error.message + ")";
                       updated.parentNode.classList.add("stale"); }
      })
      .then(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
}());
