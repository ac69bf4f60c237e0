"""Accessibility in headless Chromium. axe-core (tests/vendor/axe.min.js, MPL-2.0) checks the WCAG 2.1 A and AA
rules on every tab on a 1440x1000 desktop, in projector mode, on a 390x844 phone, with a generation in progress
and with a lesson open: no serious or critical violation. The colour scales the figures draw are the named
colour-vision-safe ones (components/palette.py). On the phone (with reduced motion asked for) every control is
at least 44 px each way and the generation player does not move by itself. And the whole path, from typing a
prompt to generating, works from the keyboard alone, with the focus always visible."""
import pathlib
import re
import time

from selenium.webdriver.common.keys import Keys

from components import generation, palette
from components.views import VIEWS
from tests.browser import PAGE_DRAWN, open_page, open_tab, script, set_projector, set_screen, wait_until

AXE = (pathlib.Path(__file__).parent / "vendor" / "axe.min.js").read_text()
# Rules that may be left failing, each on one named selector, with the reason in the README. None today.
EXCLUDED: dict[str, str] = {}
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
                   resultTypes: ["violations"]})
  .then(r => done(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
                   .map(v => ({id: v.id, targets: v.nodes.map(n => n.target.join(" ")),
                               why: v.nodes[0].failureSummary}))))
  .catch(e => done([{id: "axe-error", targets: [], why: String(e)}]));
"""
# Every colour scale of every figure on screen, as lists of colours.
COLOUR_SCALES = """
const scales = [];
document.querySelectorAll('.js-plotly-plot').forEach(gd => (gd._fullData || []).forEach(t => {
  [t.colorscale, t.marker && t.marker.colorscale].forEach(s => {
    if (Array.isArray(s)) { scales.push(s.map(p => p[1])); }
  });
}));
return scales;
"""
# Visible controls smaller than 44 px either way (WCAG 2.5.5); a check box or radio button counts with its label,
# a token inside running text is exempt (it is part of the sentence, as links in text are).
SMALL_TARGETS = """
const small = [];
document.querySelectorAll('button, a[href], input, textarea, [role=tab], [role=slider], summary, ' +
                          '.dash-options-list-option').forEach(el => {
  if (el.closest('.gen-text, .modebar') || el.type === 'file' || el.offsetParent === null
      || el.classList.contains('dash-dropdown-focus-target')) { return; }  // the dropdown's button is measured
  if (el.type === 'checkbox' || el.type === 'radio') { return; }  // measured as their label
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) { return; }
  if (r.width < 43.5 || r.height < 43.5) {
    small.push((el.id || el.className || el.tagName) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
  }
});
return small;
"""
LABELLED_BY = "return document.activeElement.getAttribute('aria-labelledby')"
CHIPS = "return document.querySelectorAll('#%s button').length" % generation.TOKENS
FOCUS = """
const el = document.activeElement, s = getComputedStyle(el);
return {id: el.id, role: el.getAttribute('role'), text: (el.textContent || '').trim().slice(0, 30),
        cls: String(el.className), body: el === document.body,
        outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2};
"""


def violations(dash_duo, where):
    if not script(dash_duo, "return !!window.axe"):
        script(dash_duo, AXE)
    dash_duo.driver.set_script_timeout(120)
    found = dash_duo.driver.execute_async_script(RUN_AXE)
    problems = []
    for v in found:
        targets = [t for t in v["targets"] if EXCLUDED.get(v["id"]) != t]
        if targets or not v["targets"]:
            problems.append(f"{where}: {v['id']} on {targets[:3]}: {v['why'][:160]}")
    return problems


def unsafe_scales(dash_duo, where):
    return [f"{where}: colour scale {scale}" for scale in script(dash_duo, COLOUR_SCALES)
            if not {palette.to_hex(c) for c in scale} <= palette.SCALE_COLOURS]


def drawn(dash_duo, timeout=60):
    time.sleep(0.3)
    wait_until(dash_duo, lambda: script(dash_duo, PAGE_DRAWN), timeout=timeout, message="page drawn")
    time.sleep(0.3)


def every_tab(dash_duo, where, check):
    problems = []
    for value, label, _ in VIEWS:
        open_tab(dash_duo, label)
        drawn(dash_duo)
        problems += check(f"{where} {value}")
    return problems


def generate(dash_duo, n_tokens):
    box = dash_duo.find_element(f"#{generation.N_TOKENS}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(n_tokens), Keys.TAB)
    dash_duo.find_element(f"#{generation.RUN}").click()


def test_audit_desktop_projector_generation_lesson(dash_duo, full_model):
    set_screen(dash_duo.driver, 1440, 1000)
    open_page(dash_duo, full_model)
    drawn(dash_duo)
    problems = every_tab(dash_duo, "desktop",
                         lambda where: violations(dash_duo, where) + unsafe_scales(dash_duo, where))
    set_projector(dash_duo.driver, True)
    problems += every_tab(dash_duo, "projector", lambda where: violations(dash_duo, where))
    set_projector(dash_duo.driver, False)
    # A generation in progress, read out in phrases, never token by token.
    script(dash_duo, """window.__said = []; new MutationObserver(() => window.__said.push(
        document.getElementById('%s').textContent)).observe(document.getElementById('%s'),
        {childList: true, subtree: true, characterData: true});""" % (generation.ANNOUNCE, generation.ANNOUNCE))
    generate(dash_duo, 40)
    wait_until(dash_duo, lambda: script(dash_duo, CHIPS) >= 3, timeout=60, message="a run in progress")
    problems += violations(dash_duo, "generating")
    wait_until(dash_duo, lambda: dash_duo.find_element(f"#{generation.STOP}").text, timeout=120, message="run ended")
    said = [s for s in script(dash_duo, "return window.__said") if s]
    steps = script(dash_duo, CHIPS)
    assert 1 <= len(said) <= steps / 2, (len(said), steps)
    # Lesson open.
    dash_duo.find_element("#lesson-open").click()
    wait_until(dash_duo, lambda: dash_duo.find_element("#lesson-panel").is_displayed(), message="lesson panel")
    drawn(dash_duo)
    problems += violations(dash_duo, "lesson")
    assert problems == [], "\n".join(problems)
    assert dash_duo.get_logs() == []


def test_phone_audit_touch_targets_and_reduced_motion(dash_duo, full_model):
    set_screen(dash_duo.driver, 390, 844, mobile=True)
    dash_duo.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-reduced-motion", "value": "reduce"}]})
    open_page(dash_duo, full_model)
    drawn(dash_duo)
    problems = every_tab(dash_duo, "phone", lambda where: violations(dash_duo, where) + [
        f"{where}: {target} is under 44 px" for target in script(dash_duo, SMALL_TARGETS)])
    assert problems == [], "\n".join(problems)
    # The player: with reduced motion, Play shows one more token and nothing moves by itself.
    generate(dash_duo, 6)
    wait_until(dash_duo, lambda: dash_duo.find_element(f"#{generation.STOP}").text, timeout=120, message="run ended")
    # (6 tokens, or fewer where a loaded machine ran out of time; the count is the player's own)
    dash_duo.find_element(f"#{generation.PLAY}").click()
    wait_until(dash_duo, lambda: dash_duo.find_element(f"#{generation.PROGRESS}").text.startswith("1 / "),
               message="Play showed one token")
    time.sleep(2)  # at the slowest speed the player would have shown two more tokens by now
    assert dash_duo.find_element(f"#{generation.PROGRESS}").text.startswith("1 / ")
    assert dash_duo.find_element(".reduced-motion-note").is_displayed()
    assert dash_duo.get_logs() == []


def press(dash_duo, *keys):
    """Keys typed into whatever has the focus (a modifier holds until the end of the call)."""
    dash_duo.driver.switch_to.active_element.send_keys(*keys)


def tab_to(dash_duo, matches, limit=120):
    """Press Tab until the focused element matches; every stop on the way must show its focus."""
    for _ in range(limit):
        press(dash_duo, Keys.TAB)
        focus = script(dash_duo, FOCUS)
        assert focus["outline"] or focus["body"], f"focus not visible on {focus}"
        if matches(focus):
            return focus
    raise AssertionError("not reached by Tab")


def back_to_tabs(dash_duo):
    for _ in range(200):
        press(dash_duo, Keys.SHIFT, Keys.TAB)
        if script(dash_duo, FOCUS)["role"] == "tab":
            return
    raise AssertionError("the tabs not reached by Shift+Tab")


def test_keyboard_only(dash_duo, full_model):
    """Type a prompt, run it, open the attention tab, change head, click a cell, open a head from the all-heads
    grid, move temperature, generate."""
    set_screen(dash_duo.driver, 1440, 1000)
    open_page(dash_duo, full_model)
    drawn(dash_duo)
    tab_to(dash_duo, lambda f: f["id"] == "prompt")
    press(dash_duo, Keys.CONTROL, "a")
    press(dash_duo, "The cat sat on the", Keys.ENTER)
    wait_until(dash_duo, lambda: "5 tokens" in dash_duo.find_element("#pipeline").text, message="prompt ran")
    # Run, the stages and the tabs follow the prompt in the tab order.
    tab_to(dash_duo, lambda f: f["id"] == "run")
    tab_to(dash_duo, lambda f: "stage" in f["cls"])
    tab_to(dash_duo, lambda f: f["role"] == "tab")
    press(dash_duo, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ENTER)  # Tokens → Embeddings → Attention head
    wait_until(dash_duo, lambda: "open-attention" in dash_duo.find_element("#page").get_attribute("class"))
    drawn(dash_duo)
    # Head: its dropdown opens with Enter, the arrows choose, Enter takes the choice.
    press(dash_duo, Keys.SHIFT, Keys.TAB)
    tab_to(dash_duo, lambda f: f["id"] == "head")
    press(dash_duo, Keys.ENTER)
    time.sleep(0.3)
    press(dash_duo, Keys.ARROW_DOWN)
    time.sleep(0.2)
    press(dash_duo, Keys.ENTER)
    wait_until(dash_duo, lambda: "head=1" in dash_duo.driver.current_url, message="head 2 chosen")
    drawn(dash_duo)
    # A cell of the scores: the keyboard cursor reads it out and Enter clicks it.
    tab_to(dash_duo, lambda f: f["id"] == "attention-scores", limit=200)
    press(dash_duo, Keys.ARROW_RIGHT)
    wait_until(dash_duo, lambda: dash_duo.find_element("#figure-cursor").get_attribute("textContent").strip(),
               message="cursor read out")
    press(dash_duo, Keys.ENTER)
    wait_until(dash_duo, lambda: re.search(r"query .* key", dash_duo.find_element("#attention-cell").text),
               message="cell inspected")
    # All heads: back to the tabs, → and Enter; the grid's cursor starts on block 1, head 1; ↓ moves to block 2,
    # Enter opens that head.
    back_to_tabs(dash_duo)
    press(dash_duo, Keys.ARROW_RIGHT, Keys.ENTER)
    wait_until(dash_duo, lambda: "open-heads" in dash_duo.find_element("#page").get_attribute("class"))
    drawn(dash_duo)
    tab_to(dash_duo, lambda f: f["id"] == "heads-grid", limit=60)
    press(dash_duo, Keys.ARROW_RIGHT)
    press(dash_duo, Keys.ARROW_LEFT)
    press(dash_duo, Keys.ARROW_DOWN)
    wait_until(dash_duo, lambda: "block 2, head 1" in dash_duo.find_element("#figure-cursor").get_attribute(
        "textContent"), message="grid cursor on block 2, head 1")
    press(dash_duo, Keys.ENTER)
    wait_until(dash_duo, lambda: "view=attention" in dash_duo.driver.current_url
               and "block=1&head=0" in dash_duo.driver.current_url, message="head opened from the grid")
    drawn(dash_duo)
    # Generation: back to the tabs, End, Enter; the temperature slider, then Generate.
    back_to_tabs(dash_duo)
    press(dash_duo, Keys.END, Keys.ENTER)
    wait_until(dash_duo, lambda: "open-generation" in dash_duo.find_element("#page").get_attribute("class"))
    drawn(dash_duo)
    press(dash_duo, Keys.SHIFT, Keys.TAB)
    for _ in range(40):  # back up to the temperature slider, above the tabs
        press(dash_duo, Keys.SHIFT, Keys.TAB)
        if script(dash_duo, LABELLED_BY) == "temperature-value-label":
            break
    press(dash_duo, Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    wait_until(dash_duo, lambda: "temperature=0.9" in dash_duo.driver.current_url, message="temperature moved")
    tab_to(dash_duo, lambda f: f["id"] == generation.RUN, limit=80)
    press(dash_duo, Keys.ENTER)
    wait_until(dash_duo, lambda: dash_duo.find_element(f"#{generation.STOP}").text, timeout=120, message="generated")
    assert script(dash_duo, CHIPS) > 0
    assert dash_duo.get_logs() == []
