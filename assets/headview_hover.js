// Head view: hovering a token shows its lines alone (BertViz's focus), in the browser with no round trip.
// The lines are a few traces per head (one per weight band, segments [query, key, gap]); a hover dims them
// and draws the hovered token's segments on top in the same colours and widths; leaving the token undoes it.
// A click still pins the focus on the server side (the "Focus on token" menu).
(function () {
  var DIMMED = 0.06;

  function isLineTrace(t) { return t.mode === "lines" && t.hoverinfo === "skip"; }

  function unfocus(gd) {
    var f = gd._tokenFocus;
    if (!f) { return; }
    gd._tokenFocus = null;
    if (gd.data.length < f.firstOverlay) { return; }  // the figure was replaced meanwhile
    var overlays = [];
    for (var i = f.firstOverlay; i < gd.data.length; i++) { overlays.push(i); }
    if (overlays.length) { window.Plotly.deleteTraces(gd, overlays); }
    window.Plotly.restyle(gd, {opacity: f.opacities}, f.lines);
  }

  function focus(gd, point) {
    var cd = point.customdata;
    if (!Array.isArray(cd) || cd.length !== 2) { return; }  // not a token marker
    var side = cd[1], y = point.y;  // side 0: the query column (left), 1: the key column (right)
    if (gd._tokenFocus && gd._tokenFocus.side === side && gd._tokenFocus.y === y) { return; }
    unfocus(gd);
    var lines = [], opacities = [], overlays = [];
    gd.data.forEach(function (t, i) {
      if (!isLineTrace(t) || !t.y) { return; }
      var xs = [], ys = [];
      for (var k = 0; k + 1 < t.y.length; k += 3) {
        if (t.y[k + side] === y) { xs.push(0, 1, null); ys.push(t.y[k], t.y[k + 1], null); }
      }
      lines.push(i);
      opacities.push(t.opacity === undefined ? 1 : t.opacity);
      if (xs.length) {
        overlays.push({x: xs, y: ys, mode: "lines", line: t.line, opacity: Math.max(0.6, t.opacity || 1),
                       hoverinfo: "skip", showlegend: false});
      }
    });
    gd._tokenFocus = {side: side, y: y, lines: lines, opacities: opacities, firstOverlay: gd.data.length};
    window.Plotly.restyle(gd, {opacity: DIMMED}, lines);
    if (overlays.length) { window.Plotly.addTraces(gd, overlays); }
  }

  function bind(graphId, tries) {
    var gd = document.querySelector("#" + graphId + " .js-plotly-plot");
    if (!gd || !gd.on || !gd.data) {
      if (tries > 0) { setTimeout(function () { bind(graphId, tries - 1); }, 100); }
      return;
    }
    gd._tokenFocus = null;  // a new figure from the server has none of our overlays
    if (gd._tokenFocusBound) { return; }
    gd._tokenFocusBound = true;
    gd.on("plotly_hover", function (event) { focus(gd, event.points[0]); });
    gd.on("plotly_unhover", function () { unfocus(gd); });
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    headview: {
      // Output: a dummy store; runs whenever the head view gets a new figure.
      bind_hover: function (figure, graphId) {
        if (figure) { bind(graphId, 50); }
        return window.dash_clientside.no_update;
      }
    }
  });
})();
