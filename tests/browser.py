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
