"""The attention-head and all-heads views in headless Chromium: choosing a head redraws it, a click on a
pattern cell explains its score, the grid and the table open a head, and a 512-token prompt stays usable."""
import re
import time

from tests.browser import DRAWN, click_grid_cell, click_point, hover_point, open_page, open_tab, script, wait_until

PROMPT = "When Mary and John went to the store, John gave a drink to"

# The head view's line traces: their opacities, and the y values of the focus overlays drawn over them.
HEAD_VIEW_LINES = """
const g = document.querySelector('#attention-headview .js-plotly-plot');
const n = g._tokenFocus ? g._tokenFocus.firstOverlay : g.data.length;
return {opacities: g.data.slice(0, n).filter(t => t.mode === 'lines' && t.hoverinfo === 'skip').map(t => t.opacity),
        overlays: g.data.slice(n).map(t => Array.from(t.y))};
"""
PATTERN = """
const g = document.querySelector('#attention-scores .js-plotly-plot');
if (!g || !g._fullData || g._fullData.length !== 4) { return null; }
return JSON.stringify(Array.from(g._fullData[3].z, r => Array.from(r)));
"""


def title(dash_duo):
    return dash_duo.find_element("#attention-title").text


def test_choosing_a_head_redraws_it_and_a_cell_click_explains_its_score(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, prompt=PROMPT, view="attention")
    wait_until(dash_duo, lambda: script(dash_duo, PATTERN), message="head 1.1 drawn")
    first = script(dash_duo, PATTERN)
    dash_duo.select_dcc_dropdown("#head", index=2)
    wait_until(dash_duo, lambda: script(dash_duo, PATTERN) not in (None, first), message="head 3 drawn")
    second = script(dash_duo, PATTERN)
    dash_duo.select_dcc_dropdown("#block", index=1)
    wait_until(dash_duo, lambda: title(dash_duo).startswith("Block 2, head 3 (L1H2)"), message="block 2 title")
    wait_until(dash_duo, lambda: script(dash_duo, PATTERN) not in (None, second), message="block 2 drawn")
    # the pattern's hover carries raw, scaled and the top q·k terms for every cell
    assert script(dash_duo, "return document.querySelector('#attention-scores .js-plotly-plot')"
                            "._fullData[3].customdata[6][2].length") == 12
    # click cell (query 6, key 2) of the pattern: the inspector explains its score with all d_head terms
    click_point(dash_duo, "attention-scores", 2, 6, subplot="x4y4")
    dash_duo.wait_for_contains_text("#attention-cell", "Raw score q·k", timeout=20)
    text = dash_duo.find_element("#attention-cell").text
    assert "query 6:" in text and "key 2:" in text and "Block 2, head 3" in text
    wait_until(dash_duo, lambda: script(dash_duo, DRAWN % "attention-cell-terms"), message="terms chart")
    bars = script(dash_duo, "return document.querySelector('#attention-cell-terms .js-plotly-plot')._fullData[0].y.length")
    assert bars == tiny_model.config.d_head
    assert dash_duo.get_logs() == []


def test_hovering_a_token_in_the_head_view_shows_only_its_lines(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, prompt=PROMPT, view="attention")
    wait_until(dash_duo, lambda: script(dash_duo, DRAWN % "attention-headview"), message="head view drawn")
    before = script(dash_duo, HEAD_VIEW_LINES)
    assert before["overlays"] == [] and all(o > 0.1 for o in before["opacities"])
    hover_point(dash_duo, "attention-headview", 0, -5)  # query token 5, in the left column
    wait_until(dash_duo, lambda: script(dash_duo, HEAD_VIEW_LINES)["overlays"], message="token 5's lines drawn")
    focused = script(dash_duo, HEAD_VIEW_LINES)
    queries = {y for overlay in focused["overlays"] for y in overlay[0::3]}
    keys = {y for overlay in focused["overlays"] for y in overlay[1::3]}
    assert queries == {-5} and keys <= {0, -1, -2, -3, -4, -5} and len(keys) > 1  # causal: keys 0..5 only
    assert all(o == 0.06 for o in focused["opacities"])  # every other line dimmed
    hover_point(dash_duo, "attention-headview", 0.5, -5)  # between the columns: no token
    wait_until(dash_duo, lambda: script(dash_duo, HEAD_VIEW_LINES) == before, message="all lines back")
    assert dash_duo.get_logs() == []


def test_grid_cell_and_table_row_open_that_head(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, prompt=PROMPT, view="heads")
    wait_until(dash_duo, lambda: script(dash_duo, DRAWN % "heads-grid"), message="grid drawn")
    # a real click in the middle of block 2, head 4's cell
    click_grid_cell(dash_duo, block=1, head=3)
    wait_until(dash_duo, lambda: title(dash_duo).startswith("Block 2, head 4"), message="grid click opened 2.4")
    assert dash_duo.find_element(".view-tab-selected").text == "Attention head"
    # the table: its first row (the head with the most previous-token attention) opens too
    open_tab(dash_duo, "All heads")
    dash_duo.wait_for_element("#heads-table td[data-dash-column='head']", timeout=20)
    cell = dash_duo.find_element("#heads-table td[data-dash-column='head']")
    block, head = re.fullmatch(r"block (\d+), head (\d+)", cell.text).groups()
    cell.click()
    wait_until(dash_duo, lambda: title(dash_duo).startswith(f"Block {block}, head {head} "),
               message=f"table row opened {block}.{head}")
    assert dash_duo.get_logs() == []


def test_512_tokens_render_the_grid_and_a_head_with_a_movable_window(dash_duo, long_context_model):
    prompt = " word" * 512
    assert len(long_context_model.tokenizer.encode(prompt)) == 512
    start = time.monotonic()
    open_page(dash_duo, long_context_model, prompt=prompt, view="heads")
    wait_until(dash_duo, lambda: script(dash_duo, DRAWN % "heads-grid"), timeout=60, message="grid for 512 tokens")
    open_tab(dash_duo, "Attention head")
    wait_until(dash_duo, lambda: script(dash_duo, PATTERN), timeout=60, message="a head at 512 tokens")
    wait_until(dash_duo, lambda: "queries 384–511 × keys 384–511 of 512 tokens" in title(dash_duo))
    assert time.monotonic() - start < 90
    assert dash_duo.find_element("#attention-long").is_displayed()
    rows = script(dash_duo, "return document.querySelector('#attention-scores .js-plotly-plot')._fullData[3].z.length")
    assert rows == 128
    # a click near the top-left of the overview moves the window to the first tokens
    click_point(dash_duo, "attention-overview", 10, 20)
    wait_until(dash_duo, lambda: "queries 0–127 × keys 0–127" in title(dash_duo), timeout=30,
               message="window moved to the start")
    wait_until(dash_duo, lambda: (script(dash_duo, PATTERN) or "").startswith("[[1,"), message="row 0 drawn")
    assert dash_duo.get_logs() == []
