"""The live Generation view in headless Chromium, on the full-size random GPT-2 (slow enough on a CPU that a run
can be watched while it runs): two pages generating at once share the engine's batch, tokens appear before the
run ends, a slider moved mid-run changes the following steps' distributions, Stop ends a run, and a downloaded
run opens again. Run: python -m pytest tests/test_browser_generation.py --headless"""
import glob
import os
import re

import torch
from selenium.webdriver.common.keys import Keys

from components import generation
from components.layout import EXAMPLES
from tests.browser import open_page, script, wait_until

PROMPT = EXAMPLES[0]  # what the page runs on load

CHIP_TITLES = "return Array.from(document.querySelectorAll('#%s button')).map(b => b.title);" % generation.TOKENS
MARKS = "return Array.from(document.querySelectorAll('#%s .gen-change-marker')).map(m => m.textContent);" \
        % generation.TOKENS


def set_tokens(dash_duo, n):
    box = dash_duo.find_element(f"#{generation.N_TOKENS}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(n), Keys.TAB)


def chip_titles(dash_duo) -> list[str]:
    return script(dash_duo, CHIP_TITLES)


def batch_sizes(titles: list[str]) -> list[int]:
    return [int(m.group(1)) for t in titles for m in [re.search(r"in a batch of (\d+)", t)] if m]


def stopped_text(dash_duo) -> str:
    return dash_duo.find_element(f"#{generation.STOP}").text


AFTER_LAST_MARK = """
const items = Array.from(document.querySelectorAll('#%s > *'));
const marks = items.map((e, i) => e.classList.contains('gen-change-marker') ? i : -1).filter(i => i >= 0);
if (!marks.length) { return null; }
const chip = items.slice(marks[marks.length - 1]).find(e => e.tagName === 'BUTTON');
return chip ? [items[marks[marks.length - 1]].textContent, chip.title] : null;
""" % generation.TOKENS


def test_live_generation_in_two_pages(dash_duo, full_model, one_torch_thread):
    open_page(dash_duo, full_model, view="generation", seed=1, temperature=1, top_k=0, top_p=1)
    driver = dash_duo.driver
    dash_duo.wait_for_contains_text("#pipeline", "6 tokens", timeout=60)
    first = driver.current_window_handle
    set_tokens(dash_duo, 100)
    driver.switch_to.new_window("tab")
    driver.get(dash_duo.server_url + "/?view=generation&seed=2")
    dash_duo.wait_for_contains_text("#pipeline", "6 tokens", timeout=60)
    second = driver.current_window_handle
    set_tokens(dash_duo, 25)

    # Page 1 starts; page 2 joins while it runs: their steps share forward passes.
    driver.switch_to.window(first)
    dash_duo.find_element(f"#{generation.RUN}").click()
    wait_until(dash_duo, lambda: len(chip_titles(dash_duo)) >= 2, timeout=60, message="page 1's first tokens")
    driver.switch_to.window(second)
    dash_duo.find_element(f"#{generation.RUN}").click()
    # Tokens appear before the run ends: some chips while the live line still says it is generating.
    wait_until(dash_duo, lambda: 0 < len(chip_titles(dash_duo)) < 25
               and "Generating" in dash_duo.find_element(f"#{generation.LIVE}").text, timeout=60,
               message="tokens shown while the run goes on")
    assert stopped_text(dash_duo) == ""
    wait_until(dash_duo, lambda: "Stopped after 25 tokens" in stopped_text(dash_duo), timeout=120,
               message="page 2's run ends")
    # The engine waits while the test looks and acts (it cannot start a forward pass without the model's lock;
    # the page's callbacks here need none), so page 1's run cannot end meanwhile however fast the machine.
    full_model.lock.acquire()
    try:
        assert 2 in batch_sizes(chip_titles(dash_duo)), batch_sizes(chip_titles(dash_duo))
        bars = script(dash_duo, "const g = document.querySelector('#%s .js-plotly-plot');"
                                "return Array.from(g._fullData[0].customdata);" % generation.STEPS_FIGURE)
        assert len(bars) == 25 and 2 in bars  # the figure: each step's time with the batch it was measured in

        # Back on page 1, still running: the temperature goes down mid-run, and the following steps are drawn from
        # the sharper distribution (their probabilities, not only their labels).
        driver.switch_to.window(first)
        assert stopped_text(dash_duo) == "", "page 1's run should still be going"
        dash_duo.find_element("#temperature [role=slider]").send_keys(*[Keys.ARROW_LEFT] * 18)  # 1.0 -> 0.1
        wait_until(dash_duo, lambda: "→ 0.1 from the next step" in dash_duo.find_element(f"#{generation.LIVE_NOTE}").text,
                   timeout=30, message="the run took the new temperature")
    finally:  # never leave the engine frozen for the tests after this one
        full_model.lock.release()
    wait_until(dash_duo, lambda: (script(dash_duo, AFTER_LAST_MARK) or [""])[0] == "T 0.1", timeout=60,
               message="a marker where the temperature became 0.1")
    mark, title = script(dash_duo, AFTER_LAST_MARK)
    k = int(re.search(r"Step (\d+):", title).group(1))
    assert abs(float(_top_probability(title)) - _expected_top(full_model, dash_duo, k, 0.1)) <= 0.051

    # Stop: the run ends a few steps after the click (the engine is held while the click is made; holding it
    # until the page confirms would also hold every request of the page that needs the model, and so the click).
    wait_until(dash_duo, lambda: len(chip_titles(dash_duo)) >= k + 2, timeout=60, message="steps after the change")
    with full_model.lock:
        assert stopped_text(dash_duo) == "", "page 1's run should still be going"
        at_click = len(chip_titles(dash_duo))
        dash_duo.find_element(f"#{generation.STOP_RUN}").click()
    # "Stopping…" shows until the run's end clears it: either is the page answering the click.
    wait_until(dash_duo, lambda: dash_duo.find_element(f"#{generation.LIVE_NOTE}").text == "Stopping…"
               or "stopped by the user" in stopped_text(dash_duo), timeout=30, message="the click answered")
    wait_until(dash_duo, lambda: "stopped by the user" in stopped_text(dash_duo), timeout=30, message="stopped")
    n = int(re.search(r"Stopped after (\d+) token", stopped_text(dash_duo)).group(1))
    assert k < n <= at_click + 10 and n < 100 and len(chip_titles(dash_duo)) == n, (k, at_click, n)
    assert 2 in batch_sizes(chip_titles(dash_duo))

    # Download the run, then open the file again: the same tokens and per-step settings come back.
    tokens = [c.get_attribute("textContent") for c in dash_duo.find_elements(f"#{generation.TOKENS} button")]
    dash_duo.find_element(f"#{generation.DOWNLOAD_BUTTON}").click()
    wait_until(dash_duo, lambda: glob.glob(os.path.join(dash_duo.download_path, "gpt2-run-*.json")), timeout=30,
               message="the run's file downloaded")
    saved = glob.glob(os.path.join(dash_duo.download_path, "gpt2-run-*.json"))[0]
    driver.get(dash_duo.server_url + "/?view=generation")
    dash_duo.wait_for_contains_text("#pipeline", "6 tokens", timeout=60)
    dash_duo.find_element(f"#{generation.UPLOAD} input[type=file]").send_keys(saved)
    dash_duo.wait_for_contains_text(f"#{generation.MESSAGE}", f"{n} tokens", timeout=30)
    wait_until(dash_duo, lambda: [c.get_attribute("textContent") for c in dash_duo.find_elements(
        f"#{generation.TOKENS} button")] == tokens, timeout=30, message="the same tokens again")
    assert f"Stopped after {n} tokens" in stopped_text(dash_duo)
    assert (script(dash_duo, AFTER_LAST_MARK) or [""])[0] == "T 0.1"
    assert dash_duo.get_logs() == []


def _top_probability(title: str) -> str:
    """The first candidate's percentage in a chip's title."""
    return re.search(r"Top candidates: .*? (\d+\.\d)%", title).group(1)


def _expected_top(model, dash_duo, k, temperature) -> float:
    """softmax(logits / T) of step k's distribution, in percent, computed here from the text before it."""
    titles = chip_titles(dash_duo)
    ids_ = model.tokenizer.encode(PROMPT) + [int(re.search(r"\(id (\d+)\)", t).group(1)) for t in titles[:k]]
    logits = model.trace(ids_, capture=False).logits[-1]
    return 100 * float(torch.softmax(logits / temperature, -1).max())
