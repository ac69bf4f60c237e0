// Typesets every element with class "equation" (its text is TeX) with KaTeX, including those Dash adds later
// (tabs mount their content when opened). KaTeX renders synchronously and needs no layout measurements, so
// equations in hidden or just-opened tabs never fail the way MathJax's did.
(function () {
  function typeset(root) {
    if (!window.katex || !root.querySelectorAll) { return; }
    root.querySelectorAll(".equation").forEach(function (el) {
      var tex = el.getAttribute("data-tex") || el.textContent;
      if (el.getAttribute("data-typeset") === tex) { return; }
      el.setAttribute("data-tex", tex);
      window.katex.render(tex, el, {displayMode: true, throwOnError: false});
      el.setAttribute("data-typeset", tex);
    });
  }
  new MutationObserver(function (mutations) {
    mutations.forEach(function (m) { m.addedNodes.forEach(function (n) { if (n.nodeType === 1) { typeset(n.parentNode || n); } }); });
  }).observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener("DOMContentLoaded", function () { typeset(document); });
})();
