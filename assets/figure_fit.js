/* Fits every Plotly figure to the room it is shown in, in the browser (the server sends one figure for all):
 * - projector mode scales the chart type and keeps each figure within one screen, the view's main figure
 *   within what is left of the first screen under the top bar;
 * - the title sits at the top, wrapped clear of the toolbar (under it on a narrow screen); a legend meant to
 *   sit above the plot goes under the title; panel titles wrap to their panel; the top margin is what sits
 *   above the plot; listed tick labels are thinned to the room they have;
 * - on a phone panels side by side are stacked one per row; a figure that lists many categories (or still
 *   has panels side by side, on a small tablet) keeps a readable width and scrolls in its own box;
 * - each figure is drawn in a task of its own, so a view's six figures never block the browser at once.
 * It wraps Plotly.react (what dcc.Graph calls) and refits the figures on screen when the mode or size changes. */
(function () {
  "use strict";
  const PROJECTOR_SCALE = 1.5;
  const NARROW = 560;        // px: below this a figure's title goes under the toolbar
  const WIDE_MIN = 640;      // px: a figure with side-by-side panels is never drawn narrower
  const TOOLBAR = 210;       // px: room the toolbar takes at the top right
  const TITLE_SCALE = 1.4;   // Plotly's title size relative to the layout font

  function projector() {
    const page = document.getElementById("page");
    return !!(page && page.classList.contains("projector"));
  }

  function scaled(font, factor, base) {
    return Object.assign({}, font, {size: Math.round(((font && font.size) || base) * factor)});
  }

  function axisNames(layout) {
    return Object.keys(layout).filter((k) => /^[xy]axis\d*$/.test(k));
  }

  // True when two panels sit side by side (x domains that do not overlap).
  function sideBySide(layout) {
    const domains = axisNames(layout).filter((k) => k[0] === "x" && layout[k] && layout[k].domain)
      .map((k) => layout[k].domain);
    return domains.some((a) => domains.some((b) => a[1] <= b[0] + 1e-6 && a !== b));
  }

  // True when an axis lists more categories than a narrow figure has room for, a label per line height.
  function crowded(layout, width) {
    return axisNames(layout).some((k) => k[0] === "x" && Array.isArray(layout[k].categoryarray) &&
                                         layout[k].categoryarray.length * 17 > width - 120);
  }

  function titleText(layout) {
    const title = layout.title;
    return typeof title === "string" ? title : (title && title.text) || "";
  }

  // Breaks text into lines of at most `chars` characters at spaces (existing <br> kept).
  function wrap(text, chars) {
    return text.split("<br>").map(function (line) {
      const words = line.split(" "), lines = [];
      let current = "";
      words.forEach(function (word) {
        const plain = (current + " " + word).replace(/<[^>]+>/g, "").trim();
        if (current && plain.length > chars) { lines.push(current); current = word; }
        else { current = current ? current + " " + word : word; }
      });
      lines.push(current);
      return lines.join("<br>");
    }).join("<br>");
  }

  // A legend in a row above the plot goes right under the title (where the figure put it, it can sit on the
  // title or on panel titles once the type is larger or the lines wrap); returns the height it needs.
  function legendUnderTitle(layout, data, titleBottom, width, fontSize) {
    const legend = layout.legend;
    if (!legend || legend.orientation !== "h" || !((legend.y || 0) >= 1)) { return 0; }
    const size = (legend.font && legend.font.size) || fontSize;
    const names = data.filter((t) => t.showlegend !== false && t.name).map((t) => String(t.name));
    let rows = 1, used = 0;  // items fill rows left to right, each item whole
    names.forEach(function (name) {
      const item = 60 + name.length * size * 0.65;
      if (used && used + item > width - 16) { rows += 1; used = 0; }
      used += item;
    });
    layout.legend = Object.assign({}, legend, {xref: "container", x: 0.01, xanchor: "left", yref: "container",
                                               y: 1 - (titleBottom + 4) / (layout.height || 450), yanchor: "top"});
    return Math.round(rows * (size * 1.6 + 8) + 10);
  }

  // On a narrow screen panels side by side go one under another, in reading order, each the full width and
  // as tall as it was (with room between them for its title and labels); their panel titles and colour bars
  // follow them. Returns the traces, colour bars moved.
  function stackPanels(layout, data, margin) {
    const panels = axisNames(layout).filter((k) => k[0] === "x" && layout[k].domain && !layout[k].overlaying)
      .map(function (k) {
        const y = "yaxis" + String(layout[k].anchor || "y").slice(1);
        return {x: k, y: y, xd: layout[k].domain, yd: (layout[y] || {}).domain || [0, 1]};
      }).sort((a, b) => (b.yd[1] - a.yd[1]) || (a.xd[0] - b.xd[0]));
    const oldPlot = (layout.height || 450) - margin.t - margin.b;
    // Panels that shared their x labels (only the bottom row had them) keep them under the last panel only.
    const sharedX = panels.some((p) => layout[p.x].showticklabels === false);
    panels.forEach(function (p, i) {
      if (sharedX) { layout[p.x] = Object.assign({}, layout[p.x], {showticklabels: i === panels.length - 1}); }
    });
    const gapPx = (p) => 34 + (layout[p.x].showticklabels === false ? 0 : 70);  // title; labels under the panel
    const heights = panels.map((p) => Math.max(120, (p.yd[1] - p.yd[0]) * oldPlot));
    const total = heights.reduce((s, h) => s + h, 0) + panels.slice(0, -1).reduce((s, p) => s + gapPx(p), 0);
    const moved = {};
    let top = total;
    panels.forEach(function (p, i) {
      const yd = [Math.max(0, (top - heights[i]) / total), top / total];
      moved[p.x] = {old: p, yd: yd};
      layout[p.x] = Object.assign({}, layout[p.x], {domain: [0, 1]});
      layout[p.y] = Object.assign({}, layout[p.y], {domain: yd, showticklabels: true});
      top -= heights[i] + gapPx(p);
    });
    (layout.annotations || []).forEach(function (a) {  // panel titles: over their panel's new place
      if (a.xref !== "paper" || a.yref !== "paper") { return; }
      const hit = panels.find((p) => Math.abs(a.y - p.yd[1]) < 0.02 && a.x >= p.xd[0] - 1e-6 && a.x <= p.xd[1] + 1e-6);
      if (hit) { a.x = 0.5; a.y = moved[hit.x].yd[1]; a.xanchor = "center"; }
    });
    layout.height = Math.round(total + margin.t + margin.b);
    return data.map(function (trace) {
      const panel = moved["xaxis" + String(trace.xaxis || "x").slice(1)];
      if (!panel || !trace.colorbar || trace.colorbar.y === undefined) { return trace; }
      const yd = panel.yd;
      return Object.assign({}, trace, {colorbar: Object.assign({}, trace.colorbar,
                                                               {y: (yd[0] + yd[1]) / 2, len: yd[1] - yd[0]})});
    });
  }

  // Annotation labels placed on the page (panel titles, messages) wrap to the width of their panel, or shrink
  // between rows of panels; returns the height of the labels above the top row of panels.
  function wrapAnnotations(layout, plotWidth, fontSize) {
    const xDomains = axisNames(layout).filter((k) => k[0] === "x" && layout[k].domain).map((k) => layout[k].domain);
    const yTops = axisNames(layout).filter((k) => k[0] === "y" && layout[k].domain).map((k) => layout[k].domain[1]);
    const top = yTops.length ? Math.max.apply(null, yTops) : 1;
    let block = 0;
    (layout.annotations || []).forEach(function (a) {
      if (a.showarrow !== false || typeof a.text !== "string") { return; }
      const aboveTop = a.yref === "paper" && a.yanchor === "bottom" && a.y >= top - 1e-6;
      let size = (a.font && a.font.size) || fontSize;
      if (a.xref === "paper") {
        const columns = xDomains.filter((d) => d[0] - 1e-6 <= a.x && a.x <= d[1] + 1e-6);
        const room = (columns.length ? Math.min.apply(null, columns.map((d) => d[1] - d[0])) : 1) * plotWidth;
        const length = a.text.replace(/<[^>]+>/g, "").length;
        if (!aboveTop && length * size * 0.55 > room) {  // between rows of panels there is room for one line
          size = Math.max(10, Math.floor(room / (length * 0.55)));
          a.font = Object.assign({}, a.font, {size: size});
        }
        a.text = wrap(a.text, Math.max(12, Math.floor(room / (size * 0.55))));
      }
      if (aboveTop) { block = Math.max(block, Math.round(a.text.split("<br>").length * size * 1.35)); }
    });
    return block;
  }

  function availableHeight(gd) {
    const main = gd.closest(".main-figure");
    const top = main ? main.getBoundingClientRect().top + window.scrollY : 0;
    const screen = window.innerHeight;
    return Math.max(300, main && top < screen ? screen - top - 12 : screen - 40);
  }

  function fit(layoutIn, data, gd) {
    const layout = JSON.parse(JSON.stringify(layoutIn || {}));
    const templateFont = (((layout.template || {}).layout || {}).font || {}).size;
    const base = (layout.font && layout.font.size) || templateFont || 12;
    const factor = projector() ? PROJECTOR_SCALE : 1;
    const margin = Object.assign({l: 80, r: 80, t: 100, b: 80}, layout.margin);
    // The box the figure sits in (and scrolls in, once the figure is wider): what a narrow screen leaves.
    const box = gd.closest(".dash-graph");
    const boxWidth = (box && box.clientWidth) || gd.clientWidth;
    if (boxWidth < NARROW && sideBySide(layout)) { data = stackPanels(layout, data, margin); }
    gd.classList.toggle("fit-wide", boxWidth < WIDE_MIN && (sideBySide(layout) || crowded(layout, boxWidth)));
    axisNames(layout).forEach(function (k) {
      layout[k] = Object.assign({automargin: true}, layout[k]);
      if (factor !== 1) {
        const axis = layout[k];
        if (axis.tickfont && axis.tickfont.size) { axis.tickfont = scaled(axis.tickfont, factor, base); }
        if (axis.title && axis.title.font && axis.title.font.size) {
          axis.title = Object.assign({}, axis.title, {font: scaled(axis.title.font, factor, base)});
        }
      }
    });
    if (factor !== 1) {
      layout.font = scaled(layout.font, factor, base);
      (layout.annotations || []).forEach(function (a) {
        if (a.font && a.font.size) { a.font = scaled(a.font, factor, base); }
      });
      if (layout.legend && layout.legend.font && layout.legend.font.size) {
        layout.legend.font = scaled(layout.legend.font, factor, base);
      }
      const wanted = Math.round((layout.height || 450) * 1.1);
      layout.height = Math.min(wanted, availableHeight(gd));
    }
    const width = gd.clientWidth || 800;
    const visible = Math.min(width, boxWidth || width);  // a figure that scrolls keeps its title in sight
    const narrow = visible < NARROW;
    const toolbarRow = narrow ? 30 : 8;  // a narrow figure keeps the toolbar's row free above everything
    const text = titleText(layout);
    let lines = 0, size = 0;
    if (text) {
      const title = typeof layout.title === "string" ? {text: text} : Object.assign({}, layout.title);
      size = (title.font && title.font.size) || Math.round(base * factor * TITLE_SCALE);
      const room = narrow ? visible - 24 : visible * 0.95 - TOOLBAR;
      title.text = wrap(text, Math.max(16, Math.floor(room / (size * 0.55))));
      lines = title.text.split("<br>").length;
      // At the very top of the figure (under the toolbar's row on a narrow screen).
      // (Plotly lifts a title of several lines by about one font size: put that back.)
      const below = toolbarRow + (lines > 1 ? size * 0.95 : 0);
      Object.assign(title, {y: 1 - below / (layout.height || 450), yref: "container", yanchor: "top",
                            pad: {t: 0, b: 0, l: 8, r: 0}});
      if (narrow) { Object.assign(title, {x: 0, xref: "container", xanchor: "left"}); }
      layout.title = title;
    }
    const titleBottom = toolbarRow + lines * size * 1.3;
    const legendBlock = legendUnderTitle(layout, data, titleBottom, width, base * factor);
    const panelBlock = wrapAnnotations(layout, width - margin.l - margin.r, base * factor);
    const topAxis = axisNames(layout).some((k) => k[0] === "x" && layout[k].side === "top" && layout[k].visible !== false);
    if (topAxis) {  // the figure's own top margin holds its axis: keep it (scaled) and add what grew
      margin.t = Math.round(margin.t * factor + Math.max(0, lines - 1) * size * 1.35 + toolbarRow - 8 + legendBlock);
    } else {  // the top margin is exactly what sits above the plot: title, legend, panel titles
      margin.t = Math.round(titleBottom + legendBlock + panelBlock + (lines || legendBlock || panelBlock ? 10 : 4));
    }
    layout.margin = margin;
    thinTicks(layout, width - margin.l - margin.r, (layout.height || 450) - margin.t - margin.b, base * factor);
    return {layout: layout, data: fitText(data)};
  }

  // Labels listed on an axis (thin_ticks on the server) keep every k-th, so that they never overlap at the
  // size and type size the figure has here (x labels are turned on their side when long: a line apart).
  function thinTicks(layout, plotWidth, plotHeight, fontSize) {
    axisNames(layout).forEach(function (k) {
      const axis = layout[k];
      if (axis.tickmode !== "array" || !Array.isArray(axis.tickvals) || axis.tickvals.length < 3) { return; }
      const domain = axis.domain || [0, 1];
      const size = (axis.tickfont && axis.tickfont.size) || fontSize;
      const room = (domain[1] - domain[0]) * (k[0] === "x" ? plotWidth : plotHeight);
      const fits = Math.max(2, Math.floor(room / (size * (k[0] === "x" ? 1.6 : 1.4))));
      if (axis.tickvals.length <= fits) { return; }
      const step = Math.ceil(axis.tickvals.length / fits);
      const keep = (_, i) => i % step === 0;
      axis.tickvals = axis.tickvals.filter(keep);
      if (Array.isArray(axis.ticktext)) { axis.ticktext = axis.ticktext.filter(keep); }
    });
  }

  // Text written on the data (heatmap cells, bar labels) grows with the rest in projector mode.
  function fitText(data) {
    if (!projector() || !Array.isArray(data)) { return data; }
    return data.map(function (trace) {
      if (!trace.textfont || !trace.textfont.size) { return trace; }
      return Object.assign({}, trace, {textfont: scaled(trace.textfont, PROJECTOR_SCALE, 12)});
    });
  }

  function install(Plotly) {
    if (!Plotly || Plotly.__fitted) { return Plotly; }
    const react = Plotly.react;
    Plotly.react = function (gd, figure) {
      if (!(gd && figure && typeof figure === "object" && !Array.isArray(figure) && arguments.length === 2)) {
        return react.apply(this, arguments);
      }
      gd.__fitSource = figure;
      const fitted = fit(figure.layout, figure.data || [], gd);
      // Each figure is drawn in a task of its own: a view's callback returns all its figures at once, and
      // drawing six long-prompt figures in one go blocked the browser for over a second.
      return new Promise(function (resolve) {
        setTimeout(function () {
          resolve(react.call(Plotly, gd, Object.assign({}, figure, fitted)));
        }, 0);
      });
    };
    Plotly.__fitted = true;
    return Plotly;
  }

  // plotly.js arrives after this file (Dash loads it on demand): catch it as it lands on window.
  if (window.Plotly) {
    install(window.Plotly);
  } else {
    let plotly;
    Object.defineProperty(window, "Plotly", {
      configurable: true, enumerable: true,
      get: function () { return plotly; },
      set: function (value) { plotly = install(value); },
    });
  }

  function refitAll() {
    if (!window.Plotly) { return; }
    document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
      if (gd.__fitSource && gd.offsetParent !== null) { window.Plotly.react(gd, gd.__fitSource); }
    });
  }

  let pending = null;
  function refitSoon() {
    clearTimeout(pending);
    pending = setTimeout(refitAll, 150);
  }
  window.addEventListener("resize", refitSoon);
  // Projector mode on or off: the page's class changes.
  let lastMode = null;
  new MutationObserver(function () {
    const mode = projector();
    if (lastMode !== null && mode !== lastMode) { refitSoon(); }
    lastMode = mode;
  }).observe(document.documentElement, {attributes: true, subtree: true, attributeFilter: ["class"]});
})();
