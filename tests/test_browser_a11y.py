"""exploration"""
import json
import pathlib
import time

from components.views import VIEWS
from tests.browser import PAGE_DRAWN, open_page, open_tab, script, set_projector, set_screen, wait_until

AXE = (pathlib.Path(__file__).parent / "vendor" / "axe.min.js").read_text()
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
  .then(r => done(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
                 .map(v => ({id: v.id, impact: v.impact, n: v.nodes.length,
                             nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ") + " :: " + n.failureSummary.slice(0, 200))}))))
  .catch(e => done([{id: "axe-error", nodes: [String(e)]}]));
"""


def audit(dash_duo):
    if not script(dash_duo, "return !!window.axe"):
        script(dash_duo, AXE)
    dash_duo.driver.set_script_timeout(60)
    return dash_duo.driver.execute_async_script(RUN_AXE)


def test_explore(dash_duo, full_model):
    open_page(dash_duo, full_model)
    wait_until(dash_duo, lambda: script(dash_duo, PAGE_DRAWN), message="first tab")
    out = {}
    for size, (w, h, proj, mob) in {"desktop": (1440, 1000, False, False), "phone": (390, 844, False, True),
                                    "projector": (1280, 720, True, False)}.items():
        set_screen(dash_duo.driver, w, h, mob)
        set_projector(dash_duo.driver, proj)
        for value, label, _ in VIEWS:
            open_tab(dash_duo, label)
            time.sleep(0.3)
            wait_until(dash_duo, lambda: script(dash_duo, PAGE_DRAWN), timeout=60)
            time.sleep(0.3)
            out[f"{size} {value}"] = audit(dash_duo)
    pathlib.Path("/tmp/a11y/explore.json").write_text(json.dumps(out, indent=1))
