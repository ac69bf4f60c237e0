"""Helpers the browser tests share: open the real app on a given model, wait for the page, run a script, and
click a data point of a Plotly figure with a real mouse."""
import time
from urllib.parse import urlencode

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait

from app import create_app

DRAWN = "const g = document.querySelector('#%s .js-plotly-plot'); return !!(g && g._fullData && g._fullData.length);"

# Pixel offsets of data point (x, y) from the top-left corner of a subplot's drag surface, scrolled into view;
# on a category axis a number is the category's index.
POINT_OFFSET = """
const [graph, subplot, x, y] = arguments;
const g = document.querySelector('#' + graph + ' .js-plotly-plot'), L = g._fullLayout;
const area = g.querySelector('.nsewdrag[data-subplot="' + subplot + '"]');
area.scrollIntoView({block: 'center'});
const [xa, ya] = subplot === 'xy' ? [L.xaxis, L.yaxis] : [L['xaxis' + subplot.split('y')[0].slice(1)],
                                                          L['yaxis' + subplot.split('y')[1]]];
const px = (a, v) => a.type === 'category' && typeof v === 'number' ? a.c2p(v) : a.d2p(v);
return [px(xa, x), px(ya, y)];
"""

# The all-heads grid's (x, y) of block `arguments[0]`, head `arguments[1]` (0-based).
GRID_CELL = """
const t = document.querySelector('#heads-grid .js-plotly-plot')._fullData[1];
const i = Array.from(t.customdata).findIndex(c => c[2] === arguments[0] && c[3] === arguments[1]);
return [t.x[i], t.y[i]];
"""


# Done when the prompt has run (stages drawn), no callback is pending and every figure in the open tab is drawn.
PAGE_DRAWN = """
if (!document.querySelector('#pipeline .stage')) { return false; }
if (document.querySelector('[data-dash-is-loading="true"]')) { return false; }
const graphs = document.querySelectorAll('.view .dash-graph').length;
const plots = Array.from(document.querySelectorAll('.view .js-plotly-plot'));
return plots.length >= graphs && plots.every(p => p._fullData);
"""

# Text that collides in the figures on screen: for each drawn figure, the letters of its title, axis titles, tick
# labels (one group per axis), colour-bar text and annotations (subplot titles), and the boxes of its legend and
# toolbar; every pair from different groups, and of tick labels on one axis, that overlaps by more than 2 px
# (letters as the turned boxes they are: rotated labels lie close without touching); also any text cut off
# at the figure's edge.
TEXT_OVERLAPS = """
const found = [];
document.querySelectorAll('.js-plotly-plot').forEach(function (gd) {
  if (gd.offsetParent === null || !gd._fullLayout) { return; }
  const name = (gd.closest('.dash-graph') || gd).id, items = [], edge = gd.getBoundingClientRect();
  // Each letter as its four corners on the screen, in order around it: its advance by its em square (a font's
  // line box adds its own leading above and below, 1.16 em in DejaVu Sans, 1.36 em in Noto Sans: space the
  // letters do not draw in, which would make neighbouring turned labels "touch" in one font and not another).
  const letters = (el) => Array.from({length: el.getNumberOfChars()}, (_, i) => {
    const e = el.getExtentOfChar(i), m = el.getScreenCTM(), p = new DOMPoint();
    const em = Math.min(e.height, parseFloat(getComputedStyle(el).fontSize) || e.height), y = e.y + (e.height - em) / 2;
    return [[e.x, y], [e.x + e.width, y], [e.x + e.width, y + em], [e.x, y + em]]
      .map(([x, y]) => { p.x = x; p.y = y; const q = p.matrixTransform(m); return [q.x, q.y]; });
  }).filter((c) => Math.abs(c[1][0] - c[0][0]) + Math.abs(c[1][1] - c[0][1]) > 0.5);
  const box = (r) => [[r.left, r.top], [r.right, r.top], [r.right, r.bottom], [r.left, r.bottom]];
  const add = (group, el) => {  // a text element, or a box (legend, toolbar)
    const rect = el.getBoundingClientRect(), text = el.tagName === 'text';
    if (!(rect.width > 0 && rect.height > 0) || (text && !el.textContent.trim())) { return; }
    const quads = text ? letters(el) : [box(rect)], xs = quads.flat().map((c) => c[0]), ys = quads.flat().map((c) => c[1]);
    const r = text && quads.length ? {left: Math.min(...xs), right: Math.max(...xs), top: Math.min(...ys),
                                      bottom: Math.max(...ys)} : rect;  // where its letters are
    items.push({group, r, quads, text: (el.textContent || group).trim().slice(0, 40)});
  };
  // Two convex quads overlap by more than 2 px unless one of their edges' normals separates them (SAT).
  const overlap = (p, q) => [p, q].every((quad) => quad.every((a, k) => {
    const b = quad[(k + 1) % 4], n = [a[1] - b[1], b[0] - a[0]], len = Math.hypot(n[0], n[1]) || 1;
    const span = (poly) => poly.map((c) => (c[0] * n[0] + c[1] * n[1]) / len);
    const s = span(p), t = span(q);
    return Math.min(Math.max(...s), Math.max(...t)) - Math.max(Math.min(...s), Math.min(...t)) > 2;
  }));
  gd.querySelectorAll('g.g-gtitle text, g[class^="g-x"] text, g[class^="g-y"] text').forEach(
    (el) => add(el.parentNode.getAttribute('class'), el));
  gd.querySelectorAll('.xaxislayer-above, .yaxislayer-above').forEach((layer, i) =>
    layer.querySelectorAll('text').forEach((el) => add('ticks' + i, el)));
  gd.querySelectorAll('.colorbar').forEach((bar, i) => bar.querySelectorAll('text').forEach((el) => add('colorbar' + i, el)));
  gd.querySelectorAll('.annotation').forEach((a, i) => a.querySelectorAll('text').forEach((el) => add('annotation' + i, el)));
  gd.querySelectorAll('.legend').forEach((el) => add('legend', el.querySelector('.bg') || el));
  const toolbar = gd.querySelector('.modebar');
  if (toolbar) { add('modebar', toolbar); }
  items.forEach(function (a, i) {
    if (a.group !== 'modebar' && (a.r.left < edge.left - 1 || a.r.right > edge.right + 1 || a.r.top < edge.top - 1 ||
                                  a.r.bottom > edge.bottom + 1)) {
      found.push(name + ': ' + a.group + ' "' + a.text + '" cut off at the edge');
    }
    items.slice(i + 1).forEach(function (b) {
      if (a.group === b.group && !/^ticks/.test(a.group)) { return; }  // labels of one axis must not touch either
      if (a.group === 'modebar' || b.group === 'modebar') {
        const other = a.group === 'modebar' ? b : a;  // the toolbar only ever covers titles and legends
        if (!/gtitle|annotation|legend/.test(other.group)) { return; }
      }
      if (a.quads.some((p) => b.quads.some((q) => overlap(p, q)))) {
        found.push(name + ': ' + a.group + ' "' + a.text + '" overlaps ' + b.group + ' "' + b.text + '"');
      }
    });
  });
});
return found;
"""

# The box of the open view's main figure (projector mode shows it first), or null.
MAIN_BOX = """
const main = Array.from(document.querySelectorAll('.main-figure')).find((e) => e.offsetParent !== null);
if (!main) { return null; }
const r = (main.querySelector('.js-plotly-plot') || main).getBoundingClientRect();
return {top: r.top, bottom: r.bottom, screen: window.innerHeight};
"""

# Every task that blocks the browser's main thread for over 50 ms, recorded from the page's first moment on;
# TAKE_LONGEST returns the longest since the last call.
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__longTasks.push(e.duration)))
  .observe({type: "longtask", buffered: true});
"""
TAKE_LONGEST = "const m = Math.max(0, ...(window.__longTasks || [])); window.__longTasks = []; return m;"
PASSAGE = ("The class looked at the screen while the model read the passage one token at a time. Every word, "
           "space and comma became a number, and each number became a vector of 768 values. ")


def record_long_tasks(driver):
    """From the next page load on, the page records its long tasks (read them with TAKE_LONGEST)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LONG_TASKS})


def long_prompt(tokenizer, n_tokens: int) -> str:
    """A passage of exactly n_tokens tokens."""
    text = tokenizer.decode(tokenizer.encode(PASSAGE * (n_tokens // 20 + 1))[:n_tokens])
    assert len(tokenizer.encode(text)) == n_tokens
    return text


# Screen sizes a class uses: (width, height, projector mode, phone emulation).
SIZES = {"projector-1280x720": (1280, 720, True, False), "projector-1920x1080": (1920, 1080, True, False),
         "phone-390x844": (390, 844, False, True), "tablet-768x1024": (768, 1024, False, False)}


def set_screen(driver, width, height, mobile=False):
    """The page's viewport exactly width × height CSS pixels; `mobile` emulates a phone (touch, mobile viewport)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": mobile})


def set_projector(driver, on):
    """Projector mode on or off (the header's check box), and wait until the page has switched."""
    page = driver.find_element("id", "page")
    if ("projector" in page.get_attribute("class").split()) != on:
        driver.find_element("css selector", "#projector input").click()
    WebDriverWait(driver, 10).until(
        lambda d: ("projector" in d.find_element("id", "page").get_attribute("class").split()) == on)


def wait_until(dash_duo, condition, timeout=30, message=""):
    """Poll `condition`; elements re-rendered mid-check (stale) just mean "not yet"."""
    return WebDriverWait(dash_duo.driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(lambda _: condition(), message)


def open_page(dash_duo, runtime, **query):
    dash_duo.start_server(create_app(runtime=runtime))
    dash_duo.driver.get(dash_duo.server_url + ("/?" + urlencode(query) if query else "/"))


def script(dash_duo, js, *args):
    return dash_duo.driver.execute_script(js, *args)


def open_tab(dash_duo, label):
    dash_duo.find_element(f"//div[contains(@class, 'view-tab')][normalize-space()='{label}']", "XPATH").click()


def point_on_screen(dash_duo, graph, x, y, subplot="xy"):
    """The drag surface of a figure's subplot and the offsets of data point (x, y) from its top-left corner
    (selenium 4.2's origin). Plotly may still be laying a just-replaced figure out (a scale-anchored axis
    gets its final range last), so this waits until the point's pixel position has stayed put for a moment."""
    last, since = None, time.monotonic()

    def settled():
        nonlocal last, since
        offset = script(dash_duo, POINT_OFFSET, graph, subplot, x, y)
        if offset != last:
            last, since = offset, time.monotonic()
        return time.monotonic() - since >= 0.5

    wait_until(dash_duo, settled, timeout=20, message=f"{graph}'s layout settled")
    surface = dash_duo.find_element(f'#{graph} .nsewdrag[data-subplot="{subplot}"]')
    return surface, int(last[0]), int(last[1])


def click_point(dash_duo, graph, x, y, subplot="xy"):
    """A real mouse click on data point (x, y) of the figure in element `graph`."""
    surface, dx, dy = point_on_screen(dash_duo, graph, x, y, subplot)
    ActionChains(dash_duo.driver).move_to_element_with_offset(surface, dx, dy).click().perform()


def hover_point(dash_duo, graph, x, y, subplot="xy"):
    """Move the mouse onto data point (x, y) of the figure in element `graph`."""
    surface, dx, dy = point_on_screen(dash_duo, graph, x, y, subplot)
    ActionChains(dash_duo.driver).move_to_element_with_offset(surface, dx, dy).perform()


def click_grid_cell(dash_duo, block, head):
    """Click the middle of a head's cell in the all-heads grid (0-based block and head)."""
    click_point(dash_duo, "heads-grid", *script(dash_duo, GRID_CELL, block, head))
