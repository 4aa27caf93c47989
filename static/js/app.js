// Small behaviours that CSP forbids inline: nothing here is needed for pages to work.
(function () {
  "use strict";
  // Flash messages fade after a while so they do not pile up during HTMX navigation.
  function fadeFlashes(root) {
    root.querySelectorAll(".flash[role=status]").forEach(function (el) {
      setTimeout(function () { el.remove(); }, 6000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { fadeFlashes(document); });
  document.addEventListener("htmx:after:swap", function (evt) {
    var target = evt.target instanceof Element ? evt.target : document;
    fadeFlashes(target);
  });
})();

// One page-wide progress bar while any htmx request is in flight.
(function () {
  "use strict";
  var inFlight = 0;
  function update() { document.getElementById("progress")?.classList.toggle("htmx-request", inFlight > 0); }
  document.addEventListener("htmx:before:request", function () { inFlight += 1; update(); });
  document.addEventListener("htmx:finally:request", function () { inFlight = Math.max(0, inFlight - 1); update(); });
})();
