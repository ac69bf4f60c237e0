"""The Next-token view without a browser: figure data against `model_runtime.sampling`, the callbacks called
directly on a tiny random GPT-2, and every kind of bad input giving a message. (The Generation view, and the
Next-token view at a generation's step: tests/test_views_generation.py.)"""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from dash import html
from dash.exceptions import PreventUpdate

from components import output, state
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
