"""The decoding lab in headless Chromium on a tiny random GPT-2: each mode of the Generation tab opens, runs, and
shows real numbers (beam tree and hypotheses, speculative rounds and speed-up, the fp32 / bf16 / int8 table, and
where decode time goes under a finished generation). Run: python -m pytest tests/test_browser_decoding.py"""
import re
import threading

from components import generation
from components.decoding import MODE, beam_view, decode_time, speculative_view, weights_view
from components.figure_access import text_id
from tests.browser import open_page, script, wait_until

TRACES = "const g = document.querySelector('#%s .js-plotly-plot'); return g && g._fullData ? g._fullData.length : 0;"
NUMBER = re.compile(r"\d+\.\d+")


def choose(dash_duo, mode):
    dash_duo.find_element(f"#{MODE} input[value='{mode}']").click()
    wait_until(dash_duo, lambda: dash_duo.find_element(f"#{MODE}-{mode}").is_displayed(), message=mode)


def drawn(dash_duo, graph, at_least=1):
    wait_until(dash_duo, lambda: script(dash_duo, TRACES % graph) >= at_least, timeout=60, message=graph)


def described(dash_duo, graph, *parts):
    """The figure's text paragraph (out of sight, read by screen readers) comes to hold each of `parts`."""
    def read():
        return script(dash_duo, "return document.getElementById(arguments[0]).textContent;", text_id(graph))
    wait_until(dash_duo, lambda: all(p in read() for p in parts), timeout=30, message=f"{graph}: {read()!r}")


def test_each_mode_renders_real_numbers(dash_duo, tiny_model, one_torch_thread, monkeypatch):
    monkeypatch.setattr(speculative_view.draft, "_runtime", tiny_model)  # the draft: the tiny model itself
    ready = threading.Event()
    ready.set()
    monkeypatch.setattr(speculative_view.draft, "_ready", ready)
    open_page(dash_duo, tiny_model, view="generation", temperature=0)
    dash_duo.wait_for_contains_text("#pipeline", "6 tokens", timeout=60)
    assert not dash_duo.find_element(f"#{MODE}-beam").is_displayed()

    # Sample: a generation, then where its decode time went.
    dash_duo.find_element(f"#{generation.RUN}").click()
    wait_until(dash_duo, lambda: "Stopped after" in dash_duo.find_element(f"#{generation.STOP}").text, timeout=60)
    dash_duo.wait_for_contains_text(f"#{decode_time.CARDS}", "GB/s", timeout=30)
    cards = dash_duo.find_element(f"#{decode_time.CARDS}").text
    assert re.search(r"[\d.,]+ ms\s+TTFT", cards) and re.search(r"[\d.,]+ ms\s+TPOT", cards), cards
    drawn(dash_duo, decode_time.FIGURE, 6)
    described(dash_duo, decode_time.FIGURE, "Step 0, the prefill of 6 tokens", "so decode is")

    choose(dash_duo, "beam")
    assert not dash_duo.find_element(f"#{generation.RUN}").is_displayed()
    dash_duo.find_element(f"#{beam_view.RUN}").click()
    dash_duo.wait_for_contains_text(f"#{beam_view.SUMMARY}", "4 beams", timeout=60)
    assert NUMBER.search(dash_duo.find_element(f"#{beam_view.SUMMARY}").text)
    drawn(dash_duo, beam_view.FIGURE, 4)
    described(dash_duo, beam_view.FIGURE, "Beam search of width 4", "The best hypothesis", "Greedy search wrote")
    rows = dash_duo.find_elements(f"#{beam_view.TABLE} tbody tr")
    assert len(rows) >= 2 and rows[-1].text.startswith("greedy")

    choose(dash_duo, "speculative")
    dash_duo.find_element(f"#{speculative_view.RUN}").click()
    dash_duo.wait_for_contains_text(f"#{speculative_view.SUMMARY}", "acceptance rate", timeout=60)
    summary = dash_duo.find_element(f"#{speculative_view.SUMMARY}").text
    assert "100%" in summary and re.search(r"\d+\.\d+×", summary), summary  # greedy, draft = target
    drawn(dash_duo, speculative_view.FIGURE)
    described(dash_duo, speculative_view.FIGURE, "rounds of up to 4 draft tokens", "(100%)")
    assert "plain step" in dash_duo.find_element(f"#{speculative_view.WHY}").text

    choose(dash_duo, "weights")
    dash_duo.find_element(f"#{weights_view.RUN}").click()
    dash_duo.wait_for_contains_text(f"#{weights_view.TABLE}", "int8", timeout=60)
    rows = [r.text for r in dash_duo.find_elements(f"#{weights_view.TABLE} tbody tr")]
    assert [r.split()[0] for r in rows] == ["float32", "bfloat16", "int8"]
    assert "10 / 10" in rows[0] and all(NUMBER.search(r) for r in rows)
    drawn(dash_duo, weights_view.FIGURE, 3)
    described(dash_duo, weights_view.FIGURE, "The weights compared on this prompt. float32:", "int8:")
    assert "MB of memory" in dash_duo.find_element(f"#{weights_view.MEMORY}").text
    assert dash_duo.get_logs() in ([], None)
