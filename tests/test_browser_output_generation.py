"""The Next-token and Generation views in headless Chromium, on the real app with a tiny random GPT-2:
sliders change the chart without errors, a seeded generation shows exactly the runtime's tokens, and clicking a
generated token moves every view to that step. Run: python -m pytest tests/test_browser_output_generation.py --headless"""
import pytest
from selenium.webdriver.common.keys import Keys

from components import generation, output
from components.layout import EXAMPLES
from model_runtime.sampling import SamplingParams, sampling_record
from tests.browser import open_page, open_tab, script, wait_until

PROMPT = EXAMPLES[0]  # what the page runs on load
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIGURE_DATA = """
const g = document.querySelector('#%s .js-plotly-plot');
if (!g || !g._fullData) { return null; }
return g._fullData.map(t => ({name: t.name, type: t.type, x: Array.from(t.x || []), y: Array.from(t.y || [])}));
"""


def console_errors(dash_duo) -> list:
    """Browser console errors (SEVERE entries)."""
    return dash_duo.get_logs() or []


def figure(dash_duo, graph_id):
    return script(dash_duo, FIGURE_DATA % graph_id)


def bar_values(data) -> dict:
    """{trace name: {x: y}} for the upper panel's bars."""
    return {t["name"]: dict(zip(t["x"], t["y"])) for t in data or [] if t["type"] == "bar" and t["name"] != "renormalised"}


def test_sliders_change_the_output_chart(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, view="output", seed=0, temperature=1, top_k=0, top_p=1, top_n=20)
    logits = tiny_model.trace(PROMPT, capture=False).logits[-1]

    def top_probability(temperature):
        return float(sampling_record(logits, SamplingParams(temperature)).probs_before.max())

    def shown_top():
        bars = bar_values(figure(dash_duo, output.FIGURE))
        return max((y for values in bars.values() for y in values.values()), default=None)

    wait_until(dash_duo, lambda: shown_top() is not None and abs(shown_top() - top_probability(1.0)) < 1e-6,
               message="the chart at temperature 1")
    thumb = dash_duo.find_element(f"#{'temperature'} [role=slider]")
    thumb.send_keys(*[Keys.ARROW_LEFT] * 10)  # 1.0 -> 0.5 in steps of 0.05
    wait_until(dash_duo, lambda: abs(shown_top() - top_probability(0.5)) < 1e-6, message="temperature 0.5")
    assert top_probability(0.5) > top_probability(1.0)  # a lower temperature sharpens the distribution

    dash_duo.find_element("#top-k [role=slider]").send_keys(*[Keys.ARROW_RIGHT] * 5)  # off -> 5
    wait_until(dash_duo, lambda: len(bar_values(figure(dash_duo, output.FIGURE)).get(
        output.STATUS_NAMES["top_k"], {})) == 15, message="top-k 5 greys out 15 of 20 bars")
    assert "5 tokens" in dash_duo.find_element(f"#{output.SUMMARY}").text
    assert console_errors(dash_duo) == []


def test_generate_reveal_and_choose_a_step(dash_duo, tiny_model):
    seed = 3
    open_page(dash_duo, tiny_model, view="generation", seed=seed, temperature=1, top_k=0, top_p=1)
    prompt_ids = tiny_model.tokenizer.encode(PROMPT)
    reference = tiny_model.generate(prompt_ids, max_new_tokens=5, temperature=1.0, top_k=0, top_p=1.0, seed=seed)
    expected = [generation.readable(step.token) for step in reference]

    box = dash_duo.find_element(f"#{generation.N_TOKENS}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("5", Keys.TAB)
    dash_duo.wait_for_contains_text("#pipeline", f"{len(prompt_ids)} tokens", timeout=20)  # the prompt has run
    dash_duo.find_element(f"#{generation.RUN}").click()
    # The player reveals the tokens one by one in the browser.
    dash_duo.wait_for_text_to_equal(f"#{generation.PROGRESS}", "5 / 5 tokens", timeout=30)
    chips = dash_duo.find_elements(f"#{generation.TOKENS} button")
    assert [c.get_attribute("textContent") for c in chips] == expected
    assert all(c.is_displayed() for c in chips)
    assert PROMPT in dash_duo.find_element(f"#{generation.TEXT}").text
    assert "Stopped after 5 tokens" in dash_duo.find_element(f"#{generation.STOP}").text
    assert figure(dash_duo, generation.STEPS_FIGURE)[0]["x"] == [0, 1, 2, 3, 4]

    # Step: the player restarts from the beginning on Play, and Step reveals one more.
    dash_duo.find_element(f"#{generation.PLAY}").click()
    dash_duo.find_element(f"#{generation.PAUSE}").click()
    dash_duo.find_element(f"#{generation.SHOW_ALL}").click()
    dash_duo.wait_for_text_to_equal(f"#{generation.PROGRESS}", "5 / 5 tokens")

    # Clicking token 2 shows every view at the moment it was chosen: prompt + 2 generated tokens.
    chips[2].click()
    dash_duo.wait_for_contains_text(f"#{generation.PROGRESS}", "every view shows step 2")
    dash_duo.wait_for_contains_text("#pipeline", f"{len(prompt_ids) + 2} tokens")
    open_tab(dash_duo, "Next token")
    dash_duo.wait_for_contains_text(f"#{output.SUMMARY}", "The generation drew at step 2", timeout=20)
    assert f"(id {reference.new_ids[2]})" in dash_duo.find_element(f"#{output.SUMMARY}").text

    open_tab(dash_duo, "Generation")
    # Back on the tab, the chips are re-rendered and stay revealed (the player's state lives in the browser).
    wait_until(dash_duo, lambda: [c.get_attribute("textContent") for c in dash_duo.find_elements(
        f"#{generation.TOKENS} button") if c.is_displayed()] == expected, message="chips shown again")
    dash_duo.find_element(f"#{generation.BACK}").click()
    dash_duo.wait_for_contains_text("#pipeline", f"{len(prompt_ids)} tokens")
    assert console_errors(dash_duo) == []

