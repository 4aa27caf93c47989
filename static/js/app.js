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

// Bulk selection: "select all on this page", a live count, and forms that ask before acting.
(function () {
  "use strict";
  function refresh(root) {
    var bar = root.querySelector("[data-bulk-bar]");
    if (!bar) return;
    var boxes = root.querySelectorAll("input[name=ids]");
    var chosen = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    var all = bar.querySelector("[data-bulk-all]");
    var count = bar.querySelector("[data-bulk-count]");
    if (all && all.checked) count.textContent = "Everything matching is selected.";
    else count.textContent = chosen ? chosen + " selected on this page." : "Select rows to act on them.";
    bar.classList.toggle("is-active", chosen > 0 || (all && all.checked));
  }
  document.addEventListener("change", function (evt) {
    var target = evt.target;
    if (!(target instanceof HTMLInputElement)) return;
    var region = target.closest(".datatable");
    if (!region) return;
    if (target.hasAttribute("data-select-all")) {
      region.querySelectorAll("input[name=ids]").forEach(function (b) { b.checked = target.checked; });
    }
    refresh(region);
  });
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      evt.preventDefault();
    }
  });
})();

// Page-wide loading state, so tables dim while a new page is on its way.
(function () {
  "use strict";
  var pending = 0;
  document.addEventListener("htmx:before:request", function () { pending += 1; document.documentElement.classList.add("is-loading"); });
  document.addEventListener("htmx:finally:request", function () {
    pending = Math.max(0, pending - 1);
    if (!pending) document.documentElement.classList.remove("is-loading");
  });
})();

// A form that comes back with errors (422) puts the cursor in the first field that needs
// attention, so keyboard and screen-reader users land on the message.
(function () {
  "use strict";
  document.addEventListener("htmx:after:swap", function (evt) {
    var target = evt.detail && evt.detail.ctx && evt.detail.ctx.target;
    if (!(target instanceof Element)) return;
    // An outerHTML swap replaced the target: look up its successor by id.
    var scope = target.isConnected ? target : (target.id && document.getElementById(target.id));
    var invalid = scope && scope.querySelector("[aria-invalid=true]");
    if (invalid instanceof HTMLElement) invalid.focus();
  });
})();

// The search box already searches as you type (input) and on Enter (submit); its change
// event, fired when it loses focus, would only repeat that search, and the repeat can
// land after a row's inline editor and wipe it. Only the filter selects search on change.
(function () {
  "use strict";
  document.addEventListener("change", function (evt) {
    var target = evt.target;
    if (target instanceof HTMLInputElement && target.type === "search" && target.closest(".table-search")) {
      evt.stopPropagation();
    }
  }, true);
})();

// After a redraw (sort, page, page size, inline save, bulk action, row change) focus goes
// back to the control that asked for it, or to its replacement: the new element with the
// same data-focus-key (or id). Otherwise it would fall to <body> and keyboard users would
// start again from the top.
(function () {
  "use strict";
  var key = null;
  function attr(el, name) {
    return el instanceof HTMLElement && el !== document.body ? el.getAttribute(name) : null;
  }
  document.addEventListener("htmx:before:request", function (evt) {
    var source = evt.detail && evt.detail.ctx && evt.detail.ctx.sourceElement;
    var active = document.activeElement;
    key = attr(source, "data-focus-key") || attr(active, "data-focus-key") || attr(active, "id") || null;
  });
  document.addEventListener("htmx:after:settle", function () {
    var wanted = key;
    key = null;
    var active = document.activeElement;
    if (!wanted || (active && active !== document.body && active.isConnected)) return;
    var found = document.querySelector('[data-focus-key="' + CSS.escape(wanted) + '"]') || document.getElementById(wanted);
    if (found instanceof HTMLElement) found.focus();
  });
})();

// The inline editor: Enter saves, Escape cancels (and focus returns to the row's Edit button).
(function () {
  "use strict";
  document.addEventListener("keydown", function (evt) {
    var target = evt.target;
    if (!(target instanceof HTMLElement)) return;
    var row = target.closest("tr.is-editing");
    if (!row) return;
    if (evt.key === "Enter" && !(target instanceof HTMLButtonElement) && !(target instanceof HTMLTextAreaElement)) {
      evt.preventDefault();
      row.querySelector("[data-inline-save]")?.click();
    } else if (evt.key === "Escape") {
      evt.preventDefault();
      row.querySelector("[data-inline-cancel]")?.click();
    }
  });
})();

// Bulk actions say what will happen ("Delete 3,001 items matching “lamp”?"); with nothing
// chosen they say so instead of asking.
(function () {
  "use strict";
  document.addEventListener("htmx:confirm", function (evt) {
    var form = evt.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "bulk-form") return;
    var bar = form.querySelector("[data-bulk-bar]");
    if (!bar) return;
    evt.preventDefault();
    var detail = evt.detail;
    var all = bar.querySelector("[data-bulk-all]");
    var count, scope = "";
    if (all && all.checked) {
      count = parseInt(all.getAttribute("data-count") || "0", 10);
      scope = all.getAttribute("data-scope") ? " " + all.getAttribute("data-scope") : "";
    } else {
      count = document.querySelectorAll('input[name=ids][form="bulk-form"]:checked').length;
    }
    if (!count) {
      bar.querySelector("[data-bulk-count]").textContent = "Select at least one item first.";
      detail.dropRequest();
      return;
    }
    var option = form.querySelector("select[name=action]").selectedOptions[0];
    var what = count.toLocaleString("en-US") + " " + bar.getAttribute(count === 1 ? "data-noun" : "data-nouns") + scope;
    if (window.confirm(option.getAttribute("data-confirm").replace("{count}", what))) detail.issueRequest();
    else detail.dropRequest();
  });
})();

// A lockout message counts its wait down; screen readers hear it once, then once more
// when the wait is over.
(function () {
  "use strict";
  function start(root) {
    root.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (el.hasAttribute("data-counting")) return;
      el.setAttribute("data-counting", "");
      var left = parseInt(el.getAttribute("data-countdown"), 10);
      var out = el.querySelector("[data-countdown-seconds]");
      setTimeout(function () { el.removeAttribute("role"); }, 1000);
      var timer = setInterval(function () {
        left -= 1;
        if (left > 0) {
          out.textContent = left + (left === 1 ? " second" : " seconds");
          return;
        }
        clearInterval(timer);
        el.setAttribute("role", "status");
        el.className = "flash flash-info";
        el.textContent = el.getAttribute("data-countdown-done");
      }, 1000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { start(document); });
  document.addEventListener("htmx:after:swap", function () { start(document); });
})();

// "Copy" buttons put a field's value on the clipboard (and select it, for a manual copy).
(function () {
  "use strict";
  document.addEventListener("click", function (evt) {
    var button = evt.target instanceof Element ? evt.target.closest("[data-copy]") : null;
    if (!button) return;
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    field.select();
    var done = function () {
      button.textContent = button.getAttribute("data-copied") || "Copied";
    };
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () {});
    else if (document.execCommand("copy")) done();
  });
  document.addEventListener("focusin", function (evt) {
    if (evt.target instanceof HTMLInputElement && evt.target.hasAttribute("data-select-on-focus")) evt.target.select();
  });
})();

// The admin group in the top bar is a <details>: close it when focus or a click goes
// elsewhere, and on Escape (returning focus to its summary).
(function () {
  "use strict";
  function closeOthers(except) {
    document.querySelectorAll("details[data-nav-group][open]").forEach(function (el) {
      if (el !== except) el.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (evt) {
    var target = evt.target instanceof Element ? evt.target.closest("details[data-nav-group]") : null;
    closeOthers(target);
  });
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") return;
    var open = document.querySelector("details[data-nav-group][open]");
    if (!open) return;
    open.removeAttribute("open");
    open.querySelector("summary")?.focus();
  });
})();
