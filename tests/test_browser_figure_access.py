"""A figure's text alternative and CSV button in headless Chromium: the attention pattern is described for the
open head and, after a change of head, for the new one, whose pattern its CSV downloads; in projector mode the
text is hidden from the eye but stays the figure's description."""
import csv
import glob
import os

import numpy as np

from tests.browser import open_page, script, set_projector, wait_until

PROMPT = "Data visualization empowers users to"
TEXT = "#attention-scores-text"


def spoken(token) -> str:
    return token.text.replace("␣", " ").strip()


def expected_start(runtime, trace, head) -> str:
    weights = trace["blocks.0.attn.hook_pattern"][head, -1].numpy().astype(np.float64)
    top = int(np.argmax(weights))
    return (f"Block 1, head {head + 1} (L0H{head}): the token “{spoken(trace.tokens[-1])}” attends most to "
            f"“{spoken(trace.tokens[top])}” ({weights[top]:.2f})")


def downloaded_pattern(folder) -> np.ndarray:
    """The last table (④, the softmax pattern) of the downloaded CSV file."""
    with open(os.path.join(folder, "attention-scores.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    last = rows[len(rows) - 1 - rows[::-1].index([]) + 1:]  # after the last blank line
    return np.array([[float(v) if v else np.nan for v in r[1:]] for r in last[2:]], dtype=np.float32)


def test_attention_text_and_csv_follow_the_head(dash_duo, tiny_model, tmp_path):
    trace = tiny_model.trace(PROMPT)
    folder = str(tmp_path)
    open_page(dash_duo, tiny_model, prompt=PROMPT, view="attention")
    dash_duo.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": folder})
    wait_until(dash_duo, lambda: dash_duo.find_element(TEXT).text.startswith(expected_start(tiny_model, trace, 0)),
               message="head 1 described")
    box = dash_duo.find_element("#attention-scores").find_element("xpath", "./ancestor::*[@role='figure'][1]")
    assert box.get_attribute("aria-describedby") == "attention-scores-text"
    button = dash_duo.find_element("#attention-scores-csv")
    assert button.get_attribute("aria-label") == "Download the numbers of Attention scores and pattern as CSV"
    dash_duo.select_dcc_dropdown("#head", index=2)
    wait_until(dash_duo, lambda: dash_duo.find_element(TEXT).text.startswith(expected_start(tiny_model, trace, 2)),
               message="head 3 described")
    button.click()  # one download: a page may start a second one only with the reader's leave
    wait_until(dash_duo, lambda: glob.glob(os.path.join(folder, "attention-scores.csv")), message="CSV downloaded")
    pattern = trace["blocks.0.attn.hook_pattern"][2].numpy().copy()
    pattern[np.triu_indices(pattern.shape[0], k=1)] = np.nan
    wait_until(dash_duo, lambda: downloaded_pattern(folder).shape == pattern.shape, message="CSV written")
    np.testing.assert_array_equal(downloaded_pattern(folder), pattern)
    # Projector mode: the room reads the chart; the text is out of sight but still describes the figure.
    set_projector(dash_duo.driver, True)
    size = script(dash_duo, f"const r = document.querySelector('{TEXT}').getBoundingClientRect(); "
                            "return [r.width, r.height];")
    assert size[0] <= 1 and size[1] <= 1
    assert script(dash_duo, f"return document.querySelector('{TEXT}').textContent").startswith(
        expected_start(tiny_model, trace, 2))
    assert dash_duo.get_logs() == []
