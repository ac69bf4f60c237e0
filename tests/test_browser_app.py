"""The whole app in headless Chromium, on a tiny random GPT-2: the page, the prompt, shared links, hostile
prompts, and the block views (heads, grid, ablation); long prompts are in test_browser_attention."""
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.keys import Keys

from components.layout import EXAMPLES
from model_runtime.runtime import GPT2Runtime
from model_runtime.tokenizer import get_tokenizer
from tests.browser import DRAWN, PAGE_DRAWN, TEXT_OVERLAPS, click_grid_cell, open_page, open_tab, script, wait_until

FIGURE_Z = """
const g = document.querySelector('#%s .js-plotly-plot');
if (!g || !g._fullData) { return null; }
return g._fullData.filter(t => t.type === 'heatmap').map(t => JSON.stringify(Array.from(t.z || [], r => Array.from(r))));
"""


def chip_count(dash_duo):
    return len(dash_duo.find_elements("#token-chips .token-chip"))


def heatmaps(dash_duo, graph_id):
    return script(dash_duo, FIGURE_Z % graph_id)


def text_of(dash_duo, selector):
    """An element's text, shown or not (each tab shows only the controls it reads)."""
    return dash_duo.find_element(selector).get_attribute("textContent")


def no_alert(driver):
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def test_page_runs_the_first_example_and_a_typed_prompt(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model)
    n = len(tiny_model.tokenizer.encode(EXAMPLES[0]))
    wait_until(dash_duo, lambda: chip_count(dash_duo) == n, message="first example's chips")
    box = dash_duo.find_element("#prompt")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("The cat sat on the mat", Keys.ENTER)
    wait_until(dash_duo, lambda: chip_count(dash_duo) == len(tiny_model.tokenizer.encode("The cat sat on the mat")))
    assert "␣cat" in dash_duo.find_element("#token-chips").text
    assert dash_duo.get_logs() == []


def test_script_injection_shows_as_text(dash_duo, tiny_model):
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    open_page(dash_duo, tiny_model)
    wait_until(dash_duo, lambda: chip_count(dash_duo) > 0)
    box = dash_duo.find_element("#prompt")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(hostile, Keys.ENTER)
    wait_until(dash_duo, lambda: chip_count(dash_duo) == len(tiny_model.tokenizer.encode(hostile)))
    text = dash_duo.find_element("#token-chips").text.replace("\n", "")
    assert "<script>" in text.replace("␣", " ") or "script" in text
    assert not dash_duo.find_elements("#token-chips img") and not dash_duo.find_elements("#token-chips script")
    assert no_alert(dash_duo.driver)
    assert dash_duo.get_logs() == []


def test_empty_prompt_gets_a_message(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model)
    wait_until(dash_duo, lambda: chip_count(dash_duo) > 0)
    box = dash_duo.find_element("#prompt")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    dash_duo.find_element("#run").click()
    dash_duo.wait_for_contains_text("#prompt-message", "empty", timeout=10)


def test_shared_link_restores_prompt_and_settings(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, prompt="A shared prompt", temperature=0.35, top_k=7, view="embeddings",
              block=1, head=3)
    wait_until(dash_duo, lambda: text_of(dash_duo, "#temperature-value") == "0.35", timeout=20)
    assert text_of(dash_duo, "#top-k-value") == "7"
    assert dash_duo.find_element("#prompt").get_attribute("value") == "A shared prompt"
    wait_until(dash_duo, lambda: heatmaps(dash_duo, "embedding-heatmap"), message="embedding view open")
    # The address bar follows the page, so copying it shares this state.
    wait_until(dash_duo, lambda: "temperature=0.35" in dash_duo.driver.current_url)
    junk = dash_duo.server_url + "/?temperature=banana&top_k=-5&view=nowhere&block=99"
    dash_duo.driver.get(junk)
    wait_until(dash_duo, lambda: text_of(dash_duo, "#temperature-value") == "1.00", timeout=20)
    assert dash_duo.get_logs() == []


def test_untrained_banner_names_the_download_command(dash_duo, tiny_model):
    untrained = GPT2Runtime(tiny_model.model, get_tokenizer(), pretrained=False, source="untrained",
                            message="Untrained weights: no GPT-2 here. Fetch GPT-2 with "
                                    "`python -m model_runtime.download gpt2` and restart.")
    open_page(dash_duo, untrained)
    dash_duo.wait_for_contains_text("#model-banner", "python -m model_runtime.download gpt2", timeout=20)


def test_block_and_head_change_the_heatmaps_and_grid_opens_a_head(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, view="attention")
    wait_until(dash_duo, lambda: heatmaps(dash_duo, "attention-scores"), message="head 1.1 drawn")
    first = heatmaps(dash_duo, "attention-scores")
    dash_duo.select_dcc_dropdown("#head", index=2)
    wait_until(dash_duo, lambda: heatmaps(dash_duo, "attention-scores") not in (None, first), message="head 3")
    dash_duo.select_dcc_dropdown("#block", index=1)
    wait_until(dash_duo, lambda: "Block 2, head 3" in dash_duo.find_element("#attention-title").text)
    # The grid: clicking a cell opens that head in the attention tab.
    open_tab(dash_duo, "All heads")
    wait_until(dash_duo, lambda: script(dash_duo, DRAWN % "heads-grid"), message="grid drawn")
    click_grid_cell(dash_duo, block=0, head=1)
    wait_until(dash_duo, lambda: "Block 1, head 2" in dash_duo.find_element("#attention-title").text,
               message="grid click opened block 1, head 2")
    assert dash_duo.get_logs() == []


def test_ablating_a_head_changes_the_output(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, view="ablation")
    dash_duo.wait_for_contains_text("#ablation-summary", "All heads are on", timeout=30)
    dash_duo.find_element("#ablation-block").click()
    dash_duo.wait_for_contains_text("#ablation-summary", "KL divergence", timeout=30)
    summary = dash_duo.find_element("#ablation-summary").text
    assert f"{tiny_model.config.n_head} heads off" in summary
    assert script(dash_duo,
                  "return document.querySelector('#ablation-compare .js-plotly-plot')._fullData.length") == 2
    wait_until(dash_duo, lambda: script(dash_duo, PAGE_DRAWN), message="comparison drawn")
    assert script(dash_duo, TEXT_OVERLAPS) == []  # the legend once sat on the title
    # KaTeX's accents (the ~ of p̃) keep the equation's colour; the page's orange is for its own name only.
    colours = script(dash_duo, "return Array.from(document.querySelectorAll('.katex .accent'), "
                               "(e) => getComputedStyle(e).color)")
    assert colours and "rgb(228, 87, 46)" not in colours
    assert dash_duo.get_logs() == []
