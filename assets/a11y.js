// Accessibility repairs and keyboard ways for what Dash's and Plotly's components render. Dash 4 draws check
// boxes and radio buttons as listbox options around real inputs (a control inside a control), tabs as plain divs
// no key can reach, dropdowns with an aria-hidden focus target, sliders without a name; Plotly's toolbars add
// unlabelled stops to the tab order. Each repair below sets attributes on what the components drew, again
// whenever the page changes (React leaves attributes it does not own alone). Texts come from the page
// (#a11y-text, translated on the server); none is written here.
(function () {
  "use strict";

  function text(key) {
    var source = document.getElementById("a11y-text");
    return (source && source.getAttribute("data-" + key)) || "";
  }

  function set(el, name, value) {
    if (el.getAttribute(name) !== value) { el.setAttribute(name, value); }
  }

  function repair(root) {
    // Check boxes and radio buttons: the native inputs, in a group; no listbox and option roles around them.
    root.querySelectorAll(".dash-options-list[role=listbox]").forEach(function (list) {
      set(list, "role", list.querySelector("input[type=radio]") ? "radiogroup" : "group");
      var name = list.id && document.querySelector("[data-label-for='" + list.id + "']");
      if (name && name.id) { set(list, "aria-labelledby", name.id); }
    });
    root.querySelectorAll(".dash-options-list-option[role=option], .dash-options-list-option[aria-selected]")
        .forEach(function (option) {
      option.removeAttribute("role");
      option.removeAttribute("aria-selected");
    });
    // Dropdowns: the button that opens the list takes the focus (it is named and announced as a list button);
    // the hidden stand-in input leaves the tab order.
    root.querySelectorAll(".dash-dropdown-focus-target").forEach(function (stand_in) {
      set(stand_in, "tabindex", "-1");
      var button = stand_in.parentNode.querySelector("button.dash-dropdown");
      if (button) { set(button, "tabindex", "0"); }
    });
    // Sliders: named by the label of the control they sit in.
    root.querySelectorAll("[role=slider]").forEach(function (thumb) {
      var holder = thumb.closest("[data-label-id]");
      if (holder) { set(thumb, "aria-labelledby", holder.getAttribute("data-label-id")); }
    });
    // Tabs: a tab list; the open tab is the one stop in the tab order, the arrow keys move between tabs.
    root.querySelectorAll(".tab-container").forEach(function (list) {
      set(list, "role", "tablist");
      var tabs = list.querySelectorAll(":scope > .tab");
      var focused = list.contains(document.activeElement) ? document.activeElement : null;
      tabs.forEach(function (tab) {
        var open = tab.classList.contains("tab--selected");
        set(tab, "role", "tab");
        set(tab, "aria-selected", open ? "true" : "false");
        set(tab, "tabindex", (focused ? tab === focused : open) ? "0" : "-1");
      });
    });
    // Plotly's toolbar: named buttons, out of the tab order (PNG download and zoom stay for the mouse; the
    // figures' numbers are on the page).
    root.querySelectorAll(".modebar-btn").forEach(function (button) {
      set(button, "tabindex", "-1");
      var title = button.getAttribute("data-title");
      if (title) { set(button, "aria-label", title); }
    });
    // A file picker is opened by its button; the hidden input is named by it and leaves the tab order.
    root.querySelectorAll("input[type=file]").forEach(function (input) {
      set(input, "tabindex", "-1");
      var button = input.parentNode.querySelector("button");
      if (button) { set(input, "aria-label", button.textContent.trim()); }
    });
    // Table page buttons (icons only).
    [["first-page", "first-page"], ["previous-page", "previous-page"], ["next-page", "next-page"],
     ["last-page", "last-page"]].forEach(function (pair) {
      root.querySelectorAll("button." + pair[0]).forEach(function (b) { set(b, "aria-label", text(pair[1])); });
    });
    // A box that scrolls on its own (an equation or chart wider than a phone) can be scrolled from the keyboard:
    // it takes the focus while it overflows and holds nothing else that could.
    root.querySelectorAll(".equation, .dash-graph, .gen-text").forEach(function (box) {
      var overflows = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
      var style = getComputedStyle(box), scrolls = overflows && /(auto|scroll)/.test(style.overflowX + style.overflowY);
      var focusable = box.querySelectorAll("button, a[href], input, select, textarea, [tabindex]");
      var inner = Array.prototype.some.call(focusable, function (el) {
        return el.tabIndex >= 0 && el.offsetParent !== null;
      });
      if (scrolls && !inner) {
        set(box, "tabindex", "0");
      } else if (box.getAttribute("tabindex") === "0" && !box.classList.contains("keyboard-figure")) {
        box.removeAttribute("tabindex");
      }
    });
    // Figures whose points do something when clicked take the focus (see the figure keys below).
    root.querySelectorAll(".keyboard-figure").forEach(function (graph) {
      set(graph, "tabindex", "0");
      set(graph, "aria-describedby", "keys-figure");
    });
  }

  var pending = false;
  function schedule() {
    if (pending) { return; }
    pending = true;
    setTimeout(function () { pending = false; repair(document); }, 50);
  }

  // ---- Tabs from the keyboard: Enter or Space opens the focused tab, arrows / Home / End move the focus.
  function onTabKey(event, tab) {
    var tabs = Array.prototype.slice.call(tab.parentNode.querySelectorAll(":scope > .tab"));
    var i = tabs.indexOf(tab), next = null;
    if (event.key === "Enter" || event.key === " ") { tab.click(); event.preventDefault(); return; }
    if (event.key === "ArrowRight" || event.key === "ArrowDown") { next = tabs[(i + 1) % tabs.length]; }
    if (event.key === "ArrowLeft" || event.key === "ArrowUp") { next = tabs[(i - 1 + tabs.length) % tabs.length]; }
    if (event.key === "Home") { next = tabs[0]; }
    if (event.key === "End") { next = tabs[tabs.length - 1]; }
    if (next) {
      event.preventDefault();
      tabs.forEach(function (t) { t.setAttribute("tabindex", t === next ? "0" : "-1"); });
      next.focus();
    }
  }

  // ---- Figures from the keyboard: the arrow keys move a cursor over the points a click would pick (it shows
  // Plotly's own hover label, and the label's text is read out), Enter or Space clicks the point, Escape leaves.
  function plot(graph) { return graph.querySelector(".js-plotly-plot"); }

  function points(gd) {
    var found = [];
    (gd._fullData || []).forEach(function (trace) {
      if (trace.visible !== true || trace.hoverinfo === "skip" || trace.hoverinfo === "none") { return; }
      var xa = gd._fullLayout[trace.xaxis.replace("x", "xaxis")];
      var ya = gd._fullLayout[trace.yaxis.replace("y", "yaxis")];
      if (!xa || !ya) { return; }
      var subplot = trace.xaxis + trace.yaxis;
      var px = function (axis, v, i) {
        if (v === undefined || v === null) { v = i; }
        return axis.type === "category" && typeof v === "number" ? axis.c2p(v) : axis.d2p(v);
      };
      if (trace.type === "heatmap") {
        var z = trace.z || [];
        z.forEach(function (row, r) {
          (row || []).forEach(function (value, c) {
            if (value === null || (typeof value === "number" && isNaN(value))) { return; }
            var x = trace.x ? trace.x[c] : (trace.x0 || 0) + c * (trace.dx || 1);
            var y = trace.y ? trace.y[r] : (trace.y0 || 0) + r * (trace.dy || 1);
            found.push({subplot: subplot, xa: xa, ya: ya, x: px(xa, x, c), y: px(ya, y, r)});
          });
        });
      } else if (trace.x && trace.y) {
        for (var i = 0; i < trace.x.length; i++) {
          if (trace.x[i] === null || trace.y[i] === null) { continue; }
          found.push({subplot: subplot, xa: xa, ya: ya, x: px(xa, trace.x[i], i), y: px(ya, trace.y[i], i)});
        }
      }
    });
    return found.filter(function (p) { return isFinite(p.x) && isFinite(p.y); });
  }

  function screenX(p) { return p.xa._offset + p.x; }
  function screenY(p) { return p.ya._offset + p.y; }

  function nearest(all, from, dx, dy) {
    var best = null, bestScore = Infinity;
    all.forEach(function (p) {
      var ex = screenX(p) - screenX(from), ey = screenY(p) - screenY(from);
      var along = ex * dx + ey * dy, across = Math.abs(ex * dy - ey * dx);
      if (along <= 0.5) { return; }
      var score = along + 3 * across;
      if (score < bestScore) { bestScore = score; best = p; }
    });
    return best;
  }

  function announce(message) {
    var live = document.getElementById("figure-cursor");
    if (live && message) { live.textContent = message; }
  }

  // Plotly draws at most one hover per 50 ms (a key pressed sooner waits for its turn): what the label says, and
  // which point a click picks, are read once the last hover asked for is drawn.
  var HOVER_DRAWN_MS = 80;

  function show(graph, gd, p, then) {
    graph._cursor = p;
    window.Plotly.Fx.hover(gd, {xpx: p.x, ypx: p.y}, p.subplot);
    clearTimeout(graph._shown);
    graph._shown = setTimeout(function () {
      var label = gd.querySelector(".hoverlayer .hovertext");
      announce(label ? label.textContent.replace(/\s+/g, " ").trim() : "");
      if (then) { then(); }
    }, HOVER_DRAWN_MS);
  }

  function onFigureKey(event, graph) {
    var gd = plot(graph);
    if (!gd || !gd._fullLayout || !window.Plotly) { return; }
    var moves = {ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1]};
    var all = points(gd);
    if (!all.length) { return; }
    var current = graph._cursor && all.filter(function (p) {
      return p.subplot === graph._cursor.subplot && Math.abs(p.x - graph._cursor.x) < 0.5
          && Math.abs(p.y - graph._cursor.y) < 0.5;
    })[0];
    if (moves[event.key]) {
      event.preventDefault();
      var next = current ? nearest(all, current, moves[event.key][0], moves[event.key][1]) : all[0];
      show(graph, gd, next || current);
    } else if ((event.key === "Enter" || event.key === " ") && current) {
      event.preventDefault();
      show(graph, gd, current, function () {
        if (gd._hoverdata && gd._hoverdata.length) { gd.emit("plotly_click", {points: gd._hoverdata, event: event}); }
      });
    } else if (event.key === "Escape") {
      clearTimeout(graph._shown);
      window.Plotly.Fx.unhover(gd);
      graph._cursor = null;
    }
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target || !target.closest) { return; }
    if (target.getAttribute("role") === "tab") { onTabKey(event, target); return; }
    if (target.classList && target.classList.contains("keyboard-figure")) { onFigureKey(event, target); }
  });
  document.addEventListener("focusout", function (event) {
    var graph = event.target && event.target.classList && event.target.classList.contains("keyboard-figure")
      ? event.target : null;
    var gd = graph && plot(graph);
    if (gd && window.Plotly && gd._fullLayout) { window.Plotly.Fx.unhover(gd); graph._cursor = null; }
  });

  function start() {
    repair(document);
    // Classes too: a chart that turns wide (figure_fit.js) starts to scroll in its box. (Not styles: the
    // generated text restyles every chip at every step.)
    new MutationObserver(schedule).observe(document.body, {childList: true, subtree: true, attributes: true,
                                                           attributeFilter: ["class"]});
    window.addEventListener("resize", schedule);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
