"""The Next-token and Generation views without a browser: figure data against `model_runtime.sampling`, the
callbacks called directly on a tiny random GPT-2, and every kind of bad input giving a message."""
import contextvars
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from dash import html, no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict
from dash.exceptions import PreventUpdate

from components import generation, ids, output, state
from model_runtime.sampling import SamplingParams, draw, make_generator, sampling_record

PROMPT = "Data visualization empowers users to"


@pytest.fixture
def model(tiny_model):
    state.model.set(tiny_model)
    return tiny_model


@pytest.fixture
def sequence(model):
    token_ids = model.tokenizer.encode(PROMPT)
    return {"ids": token_ids, "n_prompt": len(token_ids), "label": "prompt", "prompt": PROMPT}


def bars(fig, row):
    """{label: (trace name, y)} for the bar traces of one panel (x axis "x" is row 1, "x2" row 2)."""
    axis = "x" if row == 1 else "x2"
    out = {}
    for trace in fig.data:
        if trace.type == "bar" and (trace.xaxis or "x") == axis:
            for x, y in zip(trace.x, np.asarray(trace.y)):
                assert x not in out, f"{x} drawn twice"
                out[x] = (trace.name, float(y))
    return out


def expected(model, sequence, temperature, top_k, top_p, seed, n):
    logits = model.trace(sequence["ids"], capture=False).logits[-1]
    record = draw(sampling_record(logits, SamplingParams(temperature, top_k, top_p, seed=seed)), make_generator(seed))
    order = torch.sort(record.probs_before, descending=True, stable=True).indices[:n].tolist()
    return record, order


def labels_by_id(model, token_ids):
    texts = [model.tokenizer.token(i).text for i in token_ids]
    return dict(zip(token_ids, output.candidate_labels(texts, token_ids)))


# ---------------------------------------------------------------------------------------------- output view

@pytest.mark.parametrize("temperature, top_k, top_p, seed, n", [
    (1.0, 0, 1.0, 0, 10), (0.7, 20, 0.9, 1, 30), (1.5, 5, 1.0, 2, 10), (0.3, 0, 0.05, 3, 50), (2.0, 40, 0.5, 4, 20),
])
def test_output_chart_equals_the_sampling_functions(model, sequence, temperature, top_k, top_p, seed, n):
    fig, summary, table, message = output.update_output(sequence, "output", temperature, top_k, top_p, seed, n)
    assert message == "" and isinstance(fig, go.Figure) and isinstance(table, html.Table)
    record, order = expected(model, sequence, temperature, top_k, top_p, seed, n)
    labels = labels_by_id(model, order)
    before, after = bars(fig, 1), bars(fig, 2)
    assert list(before) != [] and set(before) == set(labels.values()) == set(after)
    assert list(fig.layout.xaxis.categoryarray) == [labels[i] for i in order]  # most likely first
    for token in order:
        name, y = before[labels[token]]
        assert y == pytest.approx(float(record.probs_before[token]), rel=1e-5, abs=1e-9)
        assert after[labels[token]][1] == pytest.approx(float(record.probs[token]), rel=1e-5, abs=1e-9)
        if token == record.token:
            assert name == "drawn token"
        elif record.kept_top_p[token]:
            assert name == output.STATUS_NAMES["kept"]
        elif record.kept_top_k[token]:
            assert name == output.STATUS_NAMES["top_p"]
        else:
            assert name == output.STATUS_NAMES["top_k"]
    # The cumulative line is the mass top-p looks at (renormalised over the top-k set), with the threshold.
    line = next(t for t in fig.data if t.type == "scatter")
    q = record.probs_before * record.kept_top_k
    q = (q / q.sum())[order].cumsum(0).numpy()
    np.testing.assert_allclose(np.asarray(line.y), q, rtol=1e-5, atol=1e-6)
    thresholds = [s for s in fig.layout.shapes if s.y0 == s.y1 == top_p and s.yref == "y2"]  # cumulative axis
    assert all(a.yref == "y2" for a in fig.layout.annotations if a.text.startswith("top-p"))
    assert bool(thresholds) == (top_p < 1)
    # Payload: float32 arrays, never float16 or long lists.
    for trace in fig.data:
        assert np.asarray(trace.y).dtype == np.float32
    text = str(summary)
    assert f"{int(record.kept_top_p.sum()):,} token" in text and "bits" in text


def test_summary_numbers(model, sequence):
    _, summary, _, _ = output.update_output(sequence, "output", 0.8, 10, 0.95, 7, 10)
    record, _ = expected(model, sequence, 0.8, 10, 0.95, 7, 10)
    text = str(summary)
    h = output.entropy_bits(record.probs_before.numpy())
    assert f"{h:.2f} bits" in text and f"{record.entropy_bits:.2f} bits after filtering" in text
    assert f"{100 * float(record.probs_before[record.kept_top_p].sum()):.1f}%" in text
    assert f"id {record.token})" in text and "seed 7" in text


def test_greedy_highlights_the_argmax(model, sequence):
    fig, summary, _, _ = output.update_output(sequence, "output", 0, 0, 1.0, 0, 10)
    logits = model.trace(sequence["ids"], capture=False).logits[-1]
    best = int(logits.argmax())
    label = labels_by_id(model, [best])[best]
    before, after = bars(fig, 1), bars(fig, 2)
    assert before[label][0] == "greedy choice" and after[label][1] == 1.0
    assert all(name == output.STATUS_NAMES["greedy"] for x, (name, _) in before.items() if x != label)
    assert list(fig.layout.xaxis.categoryarray)[0] == label
    assert not [t for t in fig.data if t.type == "scatter"]  # no cumulative line when greedy
    assert "Greedy" in str(summary)


def test_moving_sliders_reuses_the_cached_trace(model, sequence, monkeypatch):
    output.update_output(sequence, "output", 1.0, 0, 1.0, 0, 10)
    calls = []
    monkeypatch.setattr(model, "trace", lambda *a, **k: calls.append(a) or pytest.fail("model ran again"))
    for t, k, p in [(0.5, 3, 1.0), (1.2, 0, 0.8), (0, 0, 1.0)]:
        fig, *_ = output.update_output(sequence, "output", t, k, p, 1, 20)
        assert isinstance(fig, go.Figure)
    assert calls == []


def test_candidate_labels_are_unique():
    assert output.candidate_labels(["a", "b", "a"], [1, 2, 3]) == ["a (1)", "b", "a (3)"]
    assert output.candidate_labels(["1", "2"], [16, 17]) == ["1", "2"]


def test_figure_builder_marks_each_stage():
    rows = [dict(id=i, text=t, label=t, logit=l, scaled=l, prob_before=p, prob=q, kept_top_k=k, kept_top_p=kp,
                 p_topk=pk, rank=i)
            for i, (t, l, p, q, k, kp, pk) in enumerate([
                ("a", 3.0, 0.5, 0.625, True, True, 0.625), ("b", 2.0, 0.3, 0.375, True, True, 0.375),
                ("c", 1.0, 0.1, 0.0, False, False, 0.0)])]
    fig = output.candidates_figure(rows, drawn_id=1, top_p=0.9)
    before = bars(fig, 1)
    assert before == {"a": (output.STATUS_NAMES["kept"], 0.5), "b": ("drawn token", pytest.approx(0.3)),
                      "c": (output.STATUS_NAMES["top_k"], pytest.approx(0.1))}
    assert fig.layout.xaxis.type == "category"  # "1", "2" as token texts must not become numbers
    assert any(a.text == "drawn token" for a in fig.layout.annotations)


def test_output_waits_for_its_tab_and_a_prompt(model, sequence):
    with pytest.raises(PreventUpdate):
        output.update_output(sequence, "tokens", 1.0, 0, 1.0, 0, 10)
    fig, summary, table, message = output.update_output(None, "output", 1.0, 0, 1.0, 0, 10)
    assert "Run a prompt" in fig.layout.annotations[0].text and summary == [] and table == []


@pytest.mark.parametrize("temperature, top_k, top_p, seed, n, words", [
    (-1, 0, 1.0, 0, 10, "temperature"), (float("nan"), 0, 1.0, 0, 10, "temperature"),
    ("abc", 0, 1.0, 0, 10, "temperature"), (None, 0, 1.0, 0, 10, "temperature"),
    (1.0, -1, 1.0, 0, 10, "top_k"), (1.0, 2.5, 1.0, 0, 10, "top_k"), (1.0, "x", 1.0, 0, 10, "top_k"),
    (1.0, 0, 0, 0, 10, "top_p"), (1.0, 0, 2, 0, 10, "top_p"), (1.0, 0, None, 0, 10, "top_p"),
    (1.0, 0, 1.0, -5, 10, "seed"), (1.0, 0, 1.0, 2**40, 10, "seed"), (1.0, 0, 1.0, [1], 10, "seed"),
    (1.0, 0, 1.0, 0, 10**6, "top N"), (1.0, 0, 1.0, 0, None, "top N"), (1.0, 0, 1.0, 0, "ten", "top N"),
    (1.0, 0, 1.0, 0, 5, "top N"), (True, 0, 1.0, 0, 10, "temperature"),
])
def test_output_invalid_controls_give_messages(model, sequence, temperature, top_k, top_p, seed, n, words):
    fig, summary, table, message = output.update_output(sequence, "output", temperature, top_k, top_p, seed, n)
    assert words in message and message.startswith("Check the sampling controls")
    assert fig.layout.annotations[0].text == message and summary == [] and table == []


@pytest.mark.parametrize("bad", [{"ids": "abc"}, {"ids": []}, {"ids": [1, "2"]}, {"ids": [10**9]}, {"ids": [-1]},
                                 {"ids": [True]}, "junk", 5, {"ids": [1] * 500}])
def test_output_bad_sequences_give_messages(model, bad):
    fig, summary, table, message = output.update_output(bad, "output", 1.0, 0, 1.0, 0, 10)
    assert fig.layout.annotations[0].text and summary == [] and table == []


def test_huge_top_k_means_off(model, sequence):
    _, _, _, message = output.update_output(sequence, "output", 1.0, 10**9, 1.0, 0, 10)
    assert message == ""
    fig, *_ = output.update_output(sequence, "output", 1.0, 10**9, 1.0, 0, 10)
    assert all(name != output.STATUS_NAMES["top_k"] for name, _ in bars(fig, 1).values())


def test_empty_seed_box_means_no_seed(model, sequence):
    fig, _, _, message = output.update_output(sequence, "output", 1.0, 0, 1.0, "", 10)
    assert message == "" and isinstance(fig, go.Figure)


# ------------------------------------------------------------------------------------------ generation view

def run_generate(sequence, n=5, use_cache=("on",), temperature=1.0, top_k=0, top_p=1.0, seed=3, previous=None,
                 prompt=PROMPT):
    return generation.generate(1, sequence, prompt, n, list(use_cache), temperature, top_k, top_p, seed, previous)


def test_generate_gives_exactly_the_runtime_tokens(model, sequence):
    record, message, new_sequence = run_generate(sequence, n=5, temperature=1.2, top_k=50, top_p=0.95, seed=11)
    assert message == "" and new_sequence is no_update  # already at the prompt
    reference = model.generate(sequence["ids"], max_new_tokens=5, temperature=1.2, top_k=50, top_p=0.95, seed=11)
    steps = list(reference)
    assert record["new_ids"] == reference.new_ids == [s.token_id for s in steps]
    assert record["prompt_ids"] == sequence["ids"] and record["stop_reason"] == "max_new_tokens"
    cfg = model.config
    for n, (kept, step) in enumerate(zip(record["steps"], steps)):
        assert kept["id"] == step.token_id and kept["text"] == step.token.text and kept["rank"] == step.sampling.rank
        assert kept["prob"] == pytest.approx(float(step.sampling.probs[step.token_id]), abs=1e-6)
        assert len(kept["top"]) == 5 and kept["top"][0][1] >= kept["top"][-1][1]
        assert kept["cache_len"] == len(sequence["ids"]) + n
        assert kept["cache_bytes"] == 2 * cfg.n_layer * cfg.n_head * kept["cache_len"] * cfg.d_head * 4
    assert set(record["timings"]) >= {"ttft_s", "per_token_s", "tokens_per_s", "kv_cache_bytes"}
    assert len(record["history"]) == 1


def test_generate_without_cache_and_the_timing_history(model, sequence):
    first, _, _ = run_generate(sequence, n=3, seed=5)
    second, _, _ = run_generate(sequence, n=3, seed=5, use_cache=(), previous=first)
    assert second["new_ids"] == first["new_ids"] and not second["use_cache"]
    assert all(s["cache_len"] == 0 for s in second["steps"]) and second["timings"]["kv_cache_bytes"] == 0
    assert [h["use_cache"] for h in second["history"]] == [True, False]
    block = str(generation.timings_block(second))
    assert "Compare the last runs" in block


def test_greedy_generation_is_argmax(model, sequence):
    record, _, _ = run_generate(sequence, n=4, temperature=0)
    ids_ = list(sequence["ids"])
    for token in record["new_ids"]:
        assert token == int(model.trace(ids_, capture=False).logits[-1].argmax())
        ids_.append(token)


def test_generate_continues_the_prompt_not_the_step_on_screen(model, sequence):
    record, _, _ = run_generate(sequence, n=4)
    at_step = generation.step_sequence(record, 2, sequence)
    again, _, new_sequence = run_generate(at_step, n=4)
    assert again["prompt_ids"] == sequence["ids"] and again["new_ids"] == record["new_ids"]
    assert new_sequence["ids"] == sequence["ids"] and new_sequence["label"] == "prompt"
    assert new_sequence["prompt"] == PROMPT


def test_generate_with_no_sequence_uses_the_prompt_box(model):
    record, message, new_sequence = run_generate(None, n=2, prompt="Hello there")
    assert message == "" and new_sequence["ids"] == model.tokenizer.encode("Hello there") == record["prompt_ids"]
    _, message, new_sequence = run_generate(None, n=2, prompt="   ")
    assert "empty" in message and new_sequence is no_update


@pytest.mark.parametrize("n, use_cache, temperature, top_k, top_p, seed, words", [
    (10**6, ["on"], 1.0, 0, 1.0, 0, "number of tokens"), (0, ["on"], 1.0, 0, 1.0, 0, "number of tokens"),
    (None, ["on"], 1.0, 0, 1.0, 0, "number of tokens"), ("abc", ["on"], 1.0, 0, 1.0, 0, "number of tokens"),
    (2.5, ["on"], 1.0, 0, 1.0, 0, "number of tokens"), (float("nan"), ["on"], 1.0, 0, 1.0, 0, "number of tokens"),
    (5, ["on"], -1, 0, 1.0, 0, "temperature"), (5, ["on"], float("nan"), 0, 1.0, 0, "temperature"),
    (5, ["on"], "abc", 0, 1.0, 0, "temperature"), (5, ["on"], None, 0, 1.0, 0, "temperature"),
    (5, ["on"], 1.0, -1, 1.0, 0, "top_k"), (5, ["on"], 1.0, 0, 0, 0, "top_p"), (5, ["on"], 1.0, 0, 2, 0, "top_p"),
    (5, ["on"], 1.0, 0, 1.0, "x", "seed"), (5, "yes", 1.0, 0, 1.0, 0, "KV-cache"), (5, None, 1.0, 0, 1.0, 0, "KV-cache"),
])
def test_generate_invalid_inputs_give_messages(model, sequence, n, use_cache, temperature, top_k, top_p, seed, words):
    record, message, new_sequence = generation.generate(1, sequence, PROMPT, n, use_cache, temperature, top_k, top_p,
                                                        seed)
    assert record is no_update and new_sequence is no_update
    assert message.startswith("Cannot generate") and words in message


def test_generate_huge_top_k_is_off_and_runs(model, sequence):
    record, message, _ = run_generate(sequence, n=2, top_k=10**9)
    assert message == "" and len(record["new_ids"]) == 2


@pytest.mark.parametrize("bad", [{"ids": [10**9], "n_prompt": 1}, {"ids": "x"}, {"ids": [1, None]}])
def test_generate_bad_sequences_give_messages(model, bad):
    record, message, _ = run_generate(bad, n=2, prompt=None)
    assert record is no_update and message.startswith("Cannot generate")


def test_full_context_gives_a_message(model):
    n_ctx = model.config.n_ctx
    full = {"ids": [464] * n_ctx, "n_prompt": n_ctx, "label": "prompt"}
    record, message, _ = run_generate(full, n=3)
    assert record["new_ids"] == [] and "context window is full" in message
    _, chips, stop, _, fig = generation.render(record, "generation")
    assert chips == [] and "context window" in stop


def test_render_chips_figure_and_timings(model, sequence):
    record, _, _ = run_generate(sequence, n=5, seed=2)
    prompt, chips, stop, timings, fig = generation.render(record, "generation")
    assert prompt == PROMPT and "reached the number of tokens" in stop
    assert [c.id["index"] for c in chips] == list(range(5))
    for chip, step in zip(chips, record["steps"]):
        assert chip.children == step["chip"] and step["top"][0][0] in chip.title and chip.style["display"] == "none"
    sentence = PROMPT + "".join(c.children for c in chips)
    assert sentence.replace("↵\n", "\n") == model.tokenizer.decode(record["prompt_ids"] + record["new_ids"]) or \
        "\ufffd" in model.tokenizer.decode(record["new_ids"])
    bars_ = next(t for t in fig.data if t.type == "bar")
    np.testing.assert_allclose(np.asarray(bars_.y), [s["ms"] for s in record["steps"]], rtol=1e-5)
    cache_line = next(t for t in fig.data if t.name == "cached positions")
    assert list(np.asarray(cache_line.y)) == [s["cache_len"] for s in record["steps"]]
    text = str(timings)
    assert "time to first token" in text and "KV cache = 2 (keys and values) × 2 blocks × 4 heads" in text
    with pytest.raises(PreventUpdate):
        generation.render(record, "output")


@pytest.mark.parametrize("bad", [{"steps": 5}, {"prompt_ids": [1], "new_ids": [2], "steps": []}, "x",
                                 {"prompt_ids": [1], "new_ids": ["a"], "steps": [{}]}])
def test_render_bad_records(bad):
    prompt, chips, stop, timings, fig = generation.render(bad, "generation")
    assert chips == [] and "Generate" in stop and "Traceback" not in stop


def test_readable_tokens(model):
    tok = model.tokenizer
    assert generation.readable(tok.token(tok.encode(" the")[0])) == " the"
    assert generation.readable(tok.token(tok.encode("\n")[0])) == "↵\n"
    assert generation.readable(tok.token(tok.eot_id)) == "<|endoftext|>"
    partial = tok.token(tok.encode("🙂")[0])
    assert generation.readable(partial) == partial.text  # half an emoji stays <0xNN>


# --------------------------------------------------------------------- choosing a step, and the output view there

def call_select(trigger, generation_record, sequence, value=1):
    prop = ('{"index":%d,"type":"%s"}' % (trigger["index"], trigger["type"]) if isinstance(trigger, dict)
            else trigger) + ".n_clicks"

    def run():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop, "value": value}]))
        return generation.select_step([], 0, 0, generation_record, sequence)
    return contextvars.copy_context().run(run)


def test_clicking_a_token_shows_that_step(model, sequence):
    record, _, _ = run_generate(sequence, n=5, seed=4)
    chosen = call_select({"type": generation.CHIP, "index": 3}, record, sequence)
    ids_at_3 = sequence["ids"] + record["new_ids"][:3]
    assert chosen == {"ids": ids_at_3, "n_prompt": len(sequence["ids"]), "label": "step 3", "prompt": PROMPT,
                      "drawn": {"step": 3, "id": record["new_ids"][3], "text": record["steps"][3]["text"],
                                "settings": "its settings (temperature 1.0, top-k 0, top-p 1.0, seed 4)",
                                "length": len(ids_at_3), "last": ids_at_3[-1]}}
    back = call_select(generation.BACK, record, chosen)
    assert back["ids"] == sequence["ids"] and back["label"] == "prompt"
    whole = call_select(generation.WHOLE, record, chosen)
    assert whole["ids"] == record["prompt_ids"] + record["new_ids"] and whole["label"] == "step 5"
    assert "drawn" not in whole  # nothing drawn after the last token yet
    with pytest.raises(PreventUpdate):  # chips rendered, nothing clicked
        call_select({"type": generation.CHIP, "index": 0}, record, sequence, value=0)
    with pytest.raises(PreventUpdate):  # a chip index sent by hand that does not exist
        call_select({"type": generation.CHIP, "index": 99}, record, sequence)
    with pytest.raises(PreventUpdate):
        call_select(generation.BACK, "junk", sequence)


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (1.3, 30, 0.9)])
def test_output_at_a_step_highlights_what_the_generation_drew(model, sequence, temperature, top_k, top_p):
    record, _, _ = run_generate(sequence, n=6, temperature=temperature, top_k=top_k, top_p=top_p, seed=9)
    for n in range(6):
        at_step = generation.step_sequence(record, n, sequence)
        fig, summary, _, _ = output.update_output(at_step, "output", temperature, top_k, top_p, 9, 50)
        drawn = record["new_ids"][n]
        named = [t for t in fig.data if t.name == f"generation drew (step {n})"]
        if named:  # in the top 50 shown
            token_labels = {x for t in named for x in t.x}
            assert token_labels == {labels_by_id(model, [drawn])[drawn]}
        else:
            assert "not among them" in fig.layout.title.text
        assert f"The generation drew at step {n}" in str(summary) and f"(id {drawn})" in str(summary)
    # The whole text (step N) has no drawn token yet: a fresh draw is shown.
    whole = generation.step_sequence(record, 6, sequence)
    _, summary, _, _ = output.update_output(whole, "output", temperature, top_k, top_p, 9, 10)
    assert "The generation drew" not in str(summary)


def test_step_zero_matches_a_fresh_seeded_draw(model, sequence):
    """At the prompt, the output view's seeded draw is the generation's first token (same seed, same settings)."""
    record, _, _ = run_generate(sequence, n=1, temperature=1.0, seed=21)
    _, summary, _, _ = output.update_output(sequence, "output", 1.0, 0, 1.0, 21, 10)
    assert f"(id {record['new_ids'][0]})" in str(summary)


def test_player_and_reveal_scripts_name_real_ids():
    for name in (ids.GENERATION, generation.PLAY, generation.PAUSE, generation.STEP, generation.SHOW_ALL,
                 generation.INTERVAL):
        assert f'"{name}"' in generation.PLAYER_JS
    assert '"display": "none"' in generation.REVEAL_JS
    assert math.isfinite(generation.MAX_SECONDS) and generation.MAX_NEW_TOKENS == 100


def drawn_marker(sequence, **change):
    return {**sequence, "label": "step 0",
            "drawn": {"step": 0, "id": 5, "text": "x", "settings": "s", "length": len(sequence["ids"]),
                      "last": sequence["ids"][-1], **change}}


@pytest.mark.parametrize("change", [{"id": "5"}, {"id": None}, {"length": 3}, {"last": 0}, {"step": True},
                                    {"id": 10**7}, {"id": -1}])
def test_output_ignores_a_junk_drawn_marker(model, sequence, change):
    fig, summary, _, message = output.update_output(drawn_marker(sequence, **change), "output", 1.0, 0, 1.0, 0, 10)
    assert message == "" and "The generation drew" not in str(summary)
    good = drawn_marker(sequence)
    _, summary, _, _ = output.update_output(good, "output", 1.0, 0, 1.0, 0, 10)
    assert "The generation drew at step 0" in str(summary)
    for junk in ("x", 5, None, []):
        _, summary, _, message = output.update_output({**good, "drawn": junk}, "output", 1.0, 0, 1.0, 0, 10)
        assert message == "" and "The generation drew" not in str(summary)


def test_logits_table_shows_raw_and_scaled_logits(model, sequence):
    _, _, table, _ = output.update_output(sequence, "output", 0.5, 8, 1.0, 0, 10)
    record, order = expected(model, sequence, 0.5, 8, 1.0, 0, 10)
    body = table.children[1].children
    assert len(body) == 10
    for tr, token in zip(body, order):
        cells = [td.children for td in tr.children]
        assert cells[2] == token and cells[1] == model.tokenizer.token(token).text
        assert float(cells[3]) == pytest.approx(float(record.logits[token]), abs=1e-3)
        assert float(cells[4]) == pytest.approx(float(record.logits[token]) / 0.5, abs=1e-3)
        assert cells[6] == ("kept" if record.kept_top_k[token] else "removed")


def test_stop_ends_a_run_after_its_current_step(tiny_model):
    from app import create_app
    from model_runtime.sampling import SamplingParams
    create_app(runtime=tiny_model)  # sets up the shared cache the Stop button writes to
    assert generation.run_id("../etc", 1) is None and generation.run_id("abc", "1") is None
    name = generation.run_id("page1", 3)
    assert not generation.stop_requested(name)
    assert generation.stop(1, "page1", 3) == "Stopping…"
    record = generation.run_generation(tiny_model, [1, 2, 3], 50, SamplingParams(seed=0), True, stop_name=name)
    assert record["stop_reason"] == "cancelled" and len(record["steps"]) == 1
    other = generation.run_generation(tiny_model, [1, 2, 3], 5, SamplingParams(seed=0), True,
                                      stop_name=generation.run_id("page1", 4))
    assert other["stop_reason"] == "max_new_tokens" and len(other["steps"]) == 5
