"""The decoding lab's views without a browser, on a tiny random GPT-2: each figure builder against the numbers it
shows (beam tree, speculative rounds, the fp32 / bf16 / int8 comparison, where decode time goes), the callbacks as
the page calls them, and a clear message for every bad setting."""
import csv
import io
import math
import threading

import pytest
from dash.exceptions import PreventUpdate

from components import decoding, generation, state
from components.decoding import beam_view, decode_time, solo, speculative_view, weights_view
from components.figure_csv import figure_csv
from components.figure_text import text_of
from model_runtime.quantize import converted
from tests.test_beam import eos_heavy  # noqa: F401 (fixture)
from tests.test_views_output import PROMPT, model, sequence  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def points(fig, name):
    """(x, y) of the marker trace called `name`."""
    trace = next(t for t in fig.data if t.name == name)
    return list(zip(trace.x, trace.y)), trace


# ----------------------------------------------------------------------------------------------------------
# Beam search

def test_beam_tree_shows_every_candidate_at_its_score(eos_heavy):  # noqa: F811
    _, runtime = eos_heavy
    result = runtime.beam_search(PROMPT, num_beams=3, max_new_tokens=8, length_penalty=1.5).to_dict()
    greedy = runtime.beam_search(PROMPT, num_beams=1, max_new_tokens=8, length_penalty=1.5).to_dict()
    fig = beam_view.tree_figure(result, greedy)
    names = beam_view.status_names()
    for status in ("kept", "pruned", "finished"):
        expected = [(s["index"] + 1, r, c["score"]) for s in result["steps"] for r, c in enumerate(s["candidates"])
                    if c["status"] == status]
        if not expected:
            continue
        shown, trace = points(fig, names[status])
        assert shown == [(x, r) for x, r, _ in expected]  # each at its rank among the step's candidates
        assert [c[5] for c in trace.customdata] == pytest.approx([score for _, _, score in expected])
        assert trace.marker.color == beam_view.STATUS_COLORS[status]
        assert trace.text[0].endswith(f"<br>{expected[0][2]:.1f}")  # labelled with the cumulative log-prob
    # Finished hypotheses carry their length-normalised score, the one they are ranked by.
    shown, trace = points(fig, names["finished"])
    finished = {round(h["logprob"], 5): h["score"] for h in result["hypotheses"]}
    for custom in trace.customdata:
        if round(custom[5], 5) in finished:
            assert custom[6] == pytest.approx(finished[round(custom[5], 5)], abs=1e-5)
    # Every edge starts at the rank of the beam the candidate extends.
    first_kept = [r for r, c in enumerate(result["steps"][0]["candidates"]) if c["status"] == "kept"]
    edges = next(t for t in fig.data if t.mode == "lines" and t.legendgroup == "kept")
    starts = [y for x, y in zip(edges.x[::3], edges.y[::3]) if x == 1]
    assert set(starts) <= set(first_kept)
    assert any(h["ended_by"] == "eos" for h in result["hypotheses"])  # the eos-heavy weights end texts early
    # Greedy: one path from the prompt (0, 0) to its text's total log-probability.
    best, _ = points(fig, "best hypothesis")
    assert best[-1][1] == pytest.approx(result["hypotheses"][0]["logprob"], abs=1e-4)
    line, _ = points(fig, "greedy search (1 beam)")
    assert line[0] == (0, 0.0)
    assert line[-1][1] == pytest.approx(greedy["hypotheses"][0]["logprob"], abs=1e-4)
    assert len(line) == len(greedy["hypotheses"][0]["token_ids"]) + 1
    rows = beam_view.hypothesis_rows(result, greedy)
    assert [r["search"] for r in rows] == [f"beam {i + 1}" for i in range(len(result["hypotheses"]))] + ["greedy"]
    assert rows[0]["score"] == result["hypotheses"][0]["score"]
    assert str(beam_view.hypotheses_table(rows)).count("Tr(") == len(rows) + 1


def test_stop_at_eos_off_writes_to_the_limit(eos_heavy):  # noqa: F811
    _, runtime = eos_heavy
    ends = runtime.beam_search(PROMPT, num_beams=1, max_new_tokens=6)
    goes_on = runtime.beam_search(PROMPT, num_beams=1, max_new_tokens=6, stop_at_eos=False)
    assert ends.best.ended_by == "eos" and len(ends.best.token_ids) < 6
    assert goes_on.best.ended_by == "length" and len(goes_on.best.token_ids) == 6


def test_beam_callback(model, sequence):  # noqa: F811
    message, summary, fig, table = beam_view.search(1, sequence, PROMPT, 3, 1.0, 2, 5, ["on"])
    expected = model.beam_search(sequence["ids"], num_beams=3, max_new_tokens=5, no_repeat_ngram_size=2)
    assert message == ""
    assert summary.startswith(f"3 beams, {len(expected.steps)} steps")
    assert f"{expected.best.logprob:.3f}" in summary
    assert expected.best.text in str(table)
    with pytest.raises(PreventUpdate):
        beam_view.search(0, sequence, PROMPT, 3, 1.0, 0, 5, ["on"])


@pytest.mark.parametrize("width, lp, ngram, n, eos, says", [
    (0, 1.0, 0, 5, ["on"], "The beam width must be a whole number from 1 to 8"),
    (9, 1.0, 0, 5, ["on"], "The beam width must be a whole number from 1 to 8"),
    (None, 1.0, 0, 5, ["on"], "The beam width must be a whole number from 1 to 8; the box is empty"),
    (2, "lots", 0, 5, ["on"], "The length penalty must be a number from -5 to 5"),
    (2, float("nan"), 0, 5, ["on"], "The length penalty must be a number from -5 to 5"),
    (2, 1.0, -1, 5, ["on"], "The no-repeat n-gram size must be a whole number from 0 to 10"),
    (2, 1.0, 0, 101, ["on"], "The number of new tokens must be a whole number from 1 to 100"),
    (2, 1.0, 0, 5, "on", "the KV-cache switch must be on or off"),
])
def test_beam_bad_settings_say_why(model, sequence, width, lp, ngram, n, eos, says):  # noqa: F811
    message, *rest = beam_view.search(1, sequence, PROMPT, width, lp, ngram, n, eos)
    assert message.startswith("Cannot search: " + says), message
    assert all(r is decoding.beam_view.no_update for r in rest)


def test_solo_runs_need_a_prompt_and_room(model, sequence):  # noqa: F811
    assert beam_view.search(1, None, "   ", 2, 1.0, 0, 5, ["on"])[0] == \
        "Cannot search: The prompt is empty: type some text, or pick an example."
    full = {"ids": [464] * model.config.n_ctx, "n_prompt": model.config.n_ctx, "label": "prompt"}
    assert "the context window is full" in beam_view.search(1, full, PROMPT, 2, 1.0, 0, 5, ["on"])[0]


def test_one_solo_run_at_a_time(model, sequence, monkeypatch):  # noqa: F811
    monkeypatch.setattr(solo, "WAIT_S", 0.05)
    with solo.solo_slot():
        result = [None]
        thread = threading.Thread(target=lambda: result.__setitem__(
            0, weights_view.compare(1, sequence, PROMPT)[0]))
        thread.start()
        thread.join()
    assert result[0].startswith("Cannot compare: another beam search, speculative run or weights comparison")


# ----------------------------------------------------------------------------------------------------------
# Speculative decoding

def test_round_cells_and_figure_match_the_rounds(model, tiny_model):
    spec = model.speculative_generate(converted(tiny_model, "bfloat16"), PROMPT, k=4, max_new_tokens=20,
                                      temperature=1.0, seed=3).run()
    rounds = [r.to_dict() for r in spec.rounds]
    texts = {t: model.tokenizer.token(t).text for r in spec.rounds for t in r.proposed + [r.drawn]}
    cells = speculative_view.round_cells(rounds, texts)
    by = lambda status: [(c["round"], c["slot"]) for c in cells if c["status"] == status]  # noqa: E731
    assert by("accepted") == [(r.index, i + 1) for r in spec.rounds for i in range(r.accepted)]
    assert by("rejected") == [(r.index, r.accepted + 1) for r in spec.rounds if r.rejected is not None]
    assert len(by("resampled")) + len(by("bonus")) == len(spec.rounds)
    assert [c["text"] for c in cells if c["slot"] == len(spec.rounds[c["round"]].proposed) + 1] == \
        [texts[r.drawn] for r in spec.rounds]
    accepted = next(c for c in cells if c["status"] in ("accepted", "rejected"))
    assert accepted["keep"] == pytest.approx(min(1.0, accepted["p"] / accepted["q"]))
    fig = speculative_view.rounds_figure(cells, 4)
    names = speculative_view.status_names()
    for status in ("accepted", "rejected", "unchecked", "resampled", "bonus"):
        mine = [(c["slot"], c["round"] + 1) for c in cells if c["status"] == status]
        traces = [t for t in fig.data if t.name == names[status]]
        assert (list(zip(traces[0].x, traces[0].y)) if traces else []) == mine
    assert list(fig.layout.xaxis.ticktext)[-1] == "target"


def test_speed_summary_arithmetic():
    timings = {"seconds": 2.0, "new_tokens": 30, "rounds": 10, "draft_seconds": 0.8, "target_seconds": 1.1,
               "acceptance_rate": 0.5, "tokens_per_round": 3.0}
    s = speculative_view.speed_summary(timings, plain_seconds=1.5, plain_tokens=30)
    assert s["speculative_tokens_per_s"] == 15 and s["plain_tokens_per_s"] == 20
    assert s["speedup"] == pytest.approx(0.75)
    assert s["draft_ms_per_round"] == pytest.approx(80) and s["target_ms_per_round"] == pytest.approx(110)
    assert s["plain_ms_per_token"] == pytest.approx(50)
    why = speculative_view.why_text(s, 4, draft_pretrained=False)
    assert "80 ms (1.6× a plain step of 50 ms)" in why and "110 ms (2.2× a plain step)" in why
    assert "untrained" in why


def test_speculative_callback_greedy_keeps_every_proposal(model, sequence, monkeypatch):  # noqa: F811
    monkeypatch.setattr(speculative_view.draft, "_runtime", model)  # the draft is the target itself
    ready = threading.Event()
    ready.set()
    monkeypatch.setattr(speculative_view.draft, "_ready", ready)
    message, cards, fig, why = speculative_view.speculate(1, sequence, PROMPT, 3, 12, 0, 0, 1.0, 0)
    assert message == ""  # a trained-or-not note only; the tiny model counts as pretrained (loaded from a folder)
    assert "100%" in str(cards)  # the same model proposes exactly what it would write
    statuses = {t.name for t in fig.data}
    assert statuses <= {speculative_view.status_names()[s] for s in ("accepted", "bonus")}
    assert "plain step" in why


def test_speculative_bad_settings_and_loading_draft(model, sequence, monkeypatch):  # noqa: F811
    message = speculative_view.speculate(1, sequence, PROMPT, 0, 12, 0, 0, 1.0, 0)[0]
    assert message == ("Cannot run speculative decoding: k (draft tokens per round) must be a whole number "
                       "from 1 to 8; got 0")
    message = speculative_view.speculate(1, sequence, PROMPT, 2, 12, -1, 0, 1.0, 0)[0]
    assert message.startswith("Cannot run speculative decoding: temperature")
    loading = state.ModelHolder()
    monkeypatch.setattr(loading, "start", lambda: None)  # never finishes loading
    monkeypatch.setattr(speculative_view, "draft", loading)
    monkeypatch.setattr(speculative_view, "DRAFT_WAIT_S", 0.01)
    message = speculative_view.speculate(1, sequence, PROMPT, 2, 12, 0, 0, 1.0, 0)[0]
    assert message == ("Cannot run speculative decoding: the draft model (distilgpt2) is still loading; "
                       "press Run again in a moment.")


# ----------------------------------------------------------------------------------------------------------
# Weights: float32 / bfloat16 / int8

def test_weights_comparison_shows_its_rows(model, sequence):  # noqa: F811
    message, memory, fig, table = weights_view.compare(1, sequence, PROMPT)
    assert message == ""
    rows = weights_view.compare_dtypes(model, sequence["ids"], 2, weights_view.copies(model))
    assert [t.x for t in fig.data] == [("float32", "bfloat16", "int8")] * 3
    memory_mb = [r["weight_bytes"] / 1e6 for r in rows]
    assert list(fig.data[0].y) == pytest.approx(memory_mb)  # memory does not change between runs
    assert fig.data[2].y[0] == 0 and all(v > 0 for v in fig.data[2].y[1:])
    extra = sum(memory_mb[1:])
    assert f"{extra:,.0f} MB of memory" in memory
    assert weights_view.copies(model) is weights_view.copies(model)  # built once, kept
    text = str(table)
    for r in rows:
        assert f"{r['weight_bytes'] / 1e6:,.1f} MB" in text
    assert "10 / 10" in text  # float32 against itself


WEIGHT_ROWS = [{"dtype": d, "weight_bytes": b, "decode_tokens_per_s": t, "max_abs_dlogit": m, "top10_overlap": o,
                "top10_same_order": same}
               for d, b, t, m, o, same in (("float32", 4e8, 20.0, 0.0, 10, True),
                                           ("bfloat16", 2e8, 25.0, 0.03, 10, True),
                                           ("int8", 1.2e8, 45.0, 0.08, 9, False))]


def test_weights_figure_builder_against_rows():
    fig = weights_view.comparison_figure(WEIGHT_ROWS)
    assert list(fig.data[0].y) == [400, 200, 120]
    assert list(fig.data[1].y) == [20, 25, 45]
    assert list(fig.data[2].y) == [0, 0.03, 0.08]
    assert [a.text for a in fig.layout.annotations] == ["weight memory (MB)", "decode tokens/s",
                                                       "largest |Δlogit| vs float32"]


def test_weights_comparison_needs_float32(model, sequence):  # noqa: F811
    state.model.set(converted(model, "bfloat16"))
    try:
        message = weights_view.compare(1, sequence, PROMPT)[0]
    finally:
        state.model.set(model)
    assert message == "Cannot compare: the comparison starts from float32 weights, and this server runs bfloat16."


# ----------------------------------------------------------------------------------------------------------
# Where decode time goes

DIMS = {"name": "t", "n_layer": 2, "d_model": 8, "d_mlp": 32, "vocab_size": 100, "weight_bytes": 10_000,
        "act_bytes": 4, "dtype": "float32"}
RATES = {"bandwidth": 1e9, "flops": 1e10, "threads": 1}


def test_step_costs_by_hand():
    steps = [{"ms": 5.0, "batch_size": 1, "cache_len": 4}, {"ms": 1.0, "batch_size": 3, "cache_len": 5}]
    prefill, decode = decode_time.step_costs(steps, DIMS, prompt_tokens=4, use_cache=True, rates=RATES)
    matmul = 2 * (4 * 64 + 2 * 8 * 32) + 100 * 8  # per block: qkv + proj, mlp; then the output head
    assert matmul == 2336
    kv_position = 2 * 2 * 8 * 4
    assert prefill["tokens"] == 4 and prefill["kv_bytes"] == 4 * kv_position
    assert prefill["flops"] == 2 * matmul * 4 + 4 * 2 * 8 * (4 * 5 / 2)
    assert decode["tokens"] == 3 and decode["kv_bytes"] == 3 * 5 * kv_position
    assert decode["flops"] == 2 * matmul * 3 + 4 * 2 * 8 * 3 * 5
    assert decode["bytes"] == 10_000 + 3 * 5 * kv_position
    assert decode["memory_ms"] == pytest.approx(1000 * decode["bytes"] / 1e9)
    assert decode["compute_ms"] == pytest.approx(1000 * decode["flops"] / 1e10)
    assert decode["intensity"] == pytest.approx(decode["flops"] / decode["bytes"])
    no_cache = decode_time.step_costs(steps, DIMS, prompt_tokens=4, use_cache=False, rates=RATES)[1]
    assert no_cache["tokens"] == 5 and no_cache["kv_bytes"] == 0


def test_run_metrics_and_figure():
    steps = [{"ms": 50.0, "batch_size": 1, "cache_len": 6}] + \
        [{"ms": 10.0, "batch_size": b, "cache_len": 6 + i} for i, b in enumerate((1, 2, 4), start=1)]
    m = decode_time.run_metrics(steps)
    assert m["ttft_ms"] == 50 and m["tpot_ms"] == pytest.approx(10)
    assert m["tokens_per_s"] == pytest.approx(4 / 0.08)
    assert m["batch_tokens_per_s"] == pytest.approx(7 / 0.03)
    costs = decode_time.step_costs(steps, DIMS, 6, True, RATES)
    fig = decode_time.costs_figure(costs, RATES)
    assert list(fig.data[0].x) == [0] and list(fig.data[0].y) == [50]  # the prefill
    assert list(fig.data[1].x) == [1, 2, 3] and list(fig.data[1].y) == [10, 10, 10]
    assert list(fig.data[2].y) == pytest.approx([c["memory_ms"] for c in costs], rel=1e-6)
    assert list(fig.data[3].y) == pytest.approx([c["compute_ms"] for c in costs], rel=1e-6)
    assert list(fig.data[4].y) == pytest.approx([c["intensity"] for c in costs], rel=1e-6)
    assert list(fig.data[5].y) == [10, 10]  # the ridge: FLOP/s over bytes/s


def test_machine_rates_are_measured_once():
    rates = decode_time.machine_rates()
    assert decode_time.machine_rates() is rates
    assert 1e8 < rates["bandwidth"] < 1e13 and 1e8 < rates["flops"] < 1e15


def test_decode_time_of_a_finished_run(model, sequence):  # noqa: F811
    steps = [{"ms": 30.0, "batch_size": 1, "cache_len": len(sequence["ids"]) + 1},
             {"ms": 5.0, "batch_size": 2, "cache_len": len(sequence["ids"]) + 2}]
    record = {"prompt_ids": sequence["ids"], "new_ids": [11, 12], "steps": steps, "use_cache": True, "live": False,
              "model": {"name": model.config.name}}
    cards, fig = decode_time.render(None, generation.TAB, record)
    assert list(fig.data[0].y) + list(fig.data[1].y) == [30, 5]
    assert "30.0 ms" in str(cards) and "5.0 ms" in str(cards)  # TTFT and TPOT
    costs = decode_time.step_costs(steps, decode_time.model_dims(model), len(sequence["ids"]), True,
                                   decode_time.machine_rates())
    ridge = decode_time.machine_rates()["flops"] / decode_time.machine_rates()["bandwidth"]
    threshold = math.ceil(ridge * costs[0]["tokens"] / costs[0]["intensity"])
    assert f"from about {threshold:,.0f} prompt tokens on" in str(cards)
    assert "Drawn when the run ends" in str(decode_time.render(None, generation.TAB, {**record, "live": True})[1])
    other = {**record, "model": {"name": "gpt2-xl"}}
    assert "another model" in str(decode_time.render(None, generation.TAB, other)[1])
    with pytest.raises(PreventUpdate):
        decode_time.render(None, "tokens", record)


def test_modes_switch_between_sections():
    page = str(decoding.section())
    for mode in decoding.MODES:
        assert f"decoding-mode-{mode}" in page


# ----------------------------------------------------------------------------------------------------------
# Every chart in words and numbers: the texts name the records' own numbers, the CSVs hold them

def csv_tables(fig) -> dict[str, list[list[str]]]:
    """The figure's CSV as {title: rows} (a lone table under "")."""
    rows = list(csv.reader(io.StringIO(figure_csv(fig))))
    if not any(not r for r in rows):
        return {"": rows}
    tables, block = {}, []
    for row in rows + [[]]:
        if row:
            block.append(row)
        elif block:
            tables[block[0][0]] = block[1:]
            block = []
    return tables


def test_beam_tree_text_and_csv(eos_heavy):  # noqa: F811
    _, runtime = eos_heavy
    result = runtime.beam_search(PROMPT, num_beams=3, max_new_tokens=8, length_penalty=1.5).to_dict()
    greedy = runtime.beam_search(PROMPT, num_beams=1, max_new_tokens=8, length_penalty=1.5).to_dict()
    fig = beam_view.tree_figure(result, greedy)
    best, first = result["hypotheses"][0], greedy["hypotheses"][0]
    candidates = [(s["index"], r, c) for s in result["steps"] for r, c in enumerate(s["candidates"])]
    pruned = sum(c["status"] == "pruned" for _, _, c in candidates)
    text = text_of(fig)
    assert text.startswith(f"Beam search of width 3 over {len(result['steps'])} steps looked at {len(candidates)} "
                           "candidates:")
    assert f"{pruned} pruned." in text
    minus = lambda value: f"{value:.3f}".replace("-", "−")  # noqa: E731 (texts write a real minus sign)
    assert (f"The best hypothesis, “{best['text']}”, has {len(best['token_ids'])} tokens, log-probability "
            f"{minus(best['logprob'])} and score {minus(best['score'])}.") in text
    assert text.endswith(f"Greedy search wrote “{first['text']}”: log-probability {minus(first['logprob'])}, score "
                         f"{minus(first['score'])}.")
    tables = csv_tables(fig)
    names = beam_view.status_names()
    for status in ("kept", "pruned", "finished"):
        mine = [(t, r, c) for t, r, c in candidates if c["status"] == status]
        if not mine:
            continue
        header, *rows = tables[names[status]]
        assert header[:6] == ["new token", "rank", "token", "log p", "extends beam", "cumulative log p"]
        assert [(int(row[0]), int(row[1]), row[2]) for row in rows] == [(t + 1, r + 1, c["text"]) for t, r, c in mine]
        assert [float(row[5]) for row in rows] == pytest.approx([c["score"] for _, _, c in mine])
    finished = tables[names["finished"]]
    assert finished[0][-1] == "score (length-normalised)"
    assert best["score"] == pytest.approx(max(float(row[-1]) for row in finished[1:]), abs=1e-6)
    lines = figure_csv(fig).split("\n\n")  # the lower panel: the best hypothesis's path, greedy's
    path = next(list(csv.reader(io.StringIO(t))) for t in lines if "best hypothesis" in t)
    assert path[1][:2] == ["new token (0 = the prompt)", "best hypothesis"]
    assert float(path[-1][1]) == pytest.approx(best["logprob"], abs=1e-4)


def test_speculative_rounds_text_and_csv(model, tiny_model):  # noqa: F811
    spec = model.speculative_generate(converted(tiny_model, "bfloat16"), PROMPT, k=4, max_new_tokens=20,
                                      temperature=1.0, seed=3).run()
    texts = {t: model.tokenizer.token(t).text for r in spec.rounds for t in r.proposed + [r.drawn]}
    fig = speculative_view.rounds_figure(speculative_view.round_cells([r.to_dict() for r in spec.rounds], texts), 4)
    kept, proposed = sum(r.accepted for r in spec.rounds), sum(len(r.proposed) for r in spec.rounds)
    rounds, bonus = len(spec.rounds), sum(bool(r.bonus) for r in spec.rounds)
    assert kept + rounds == len(spec.new_ids)
    assert text_of(fig) == (
        f"{rounds} rounds of up to 4 draft tokens: the target kept {kept} of the {proposed} proposals "
        f"({kept / proposed:.0%}) and added a token of its own each round ({bonus} of them bonus tokens, after "
        f"keeping all), {len(spec.new_ids)} new tokens in all, {len(spec.new_ids) / rounds:.2f} per round.")
    tables = csv_tables(fig)
    accepted = tables[speculative_view.status_names()["accepted"]] if kept else None
    if accepted:
        header, *rows = accepted
        assert header == ["round", "slot (k + 1: the target's)", "token", "q (draft)", "p (target)",
                          "keep probability"]
        assert len(rows) == kept
        first = next(r for r in spec.rounds if r.accepted)
        row = rows[0]  # cells in round order: the first round that kept a proposal, its first
        assert row[:3] == [str(first.index + 1), "1", texts[first.proposed[0]]]
        assert float(row[4]) == pytest.approx(first.to_dict()["target_probs"][0])
    own = sum(len(rows) - 1 for title, rows in tables.items()
              if title in (speculative_view.status_names()["resampled"], speculative_view.status_names()["bonus"]))
    assert own == rounds


def test_weights_text_and_csv():
    fig = weights_view.comparison_figure(WEIGHT_ROWS)
    parts = [f"{r['dtype']}: {r['weight_bytes'] / 1e6:.1f} MB of weights, {r['decode_tokens_per_s']:.1f} tokens/s, "
             f"largest |Δlogit| {r['max_abs_dlogit']:.4f}, top 10 next tokens: {r['top10_overlap']} of 10 shared with "
             f"float32, in {'the same' if r['top10_same_order'] else 'another'} order" for r in WEIGHT_ROWS]
    assert text_of(fig) == "The weights compared on this prompt. " + "; ".join(parts) + "."
    header, *rows = csv_tables(fig)[""]
    assert header == ["weights", "weight memory (MB)", "decode tokens/s", "largest |Δlogit| vs float32",
                      "top-10 shared", "same order"]
    assert rows == [[r["dtype"], str(r["weight_bytes"] / 1e6), str(r["decode_tokens_per_s"]), str(r["max_abs_dlogit"]),
                     str(r["top10_overlap"]), str(r["top10_same_order"])] for r in WEIGHT_ROWS]


def test_decode_time_text_and_csv():
    steps = [{"ms": 50.0, "batch_size": 1, "cache_len": 6}] + \
        [{"ms": ms, "batch_size": 1, "cache_len": 6 + i} for i, ms in enumerate((10.0, 12.0, 11.0), start=1)]
    costs = decode_time.step_costs(steps, DIMS, 6, True, RATES)
    fig = decode_time.costs_figure(costs, RATES)
    decode = costs[1:]
    memory = sum(c["memory_ms"] for c in decode) / 3
    compute = sum(c["compute_ms"] for c in decode) / 3
    assert memory > compute
    assert text_of(fig) == (
        f"Step 0, the prefill of 6 tokens (the time to first token): measured 50.00 ms; floors "
        f"{costs[0]['memory_ms']:.3f} ms to read its bytes and {costs[0]['compute_ms']:.3f} ms for its arithmetic. "
        f"The 3 decode steps: measured 11.00 ms per token on average (time per output token); floors {memory:.3f} ms "
        f"for memory and {compute:.3f} ms for arithmetic, so decode is memory-bound. FLOPs per byte: "
        f"{costs[0]['intensity']:.2f} in the prefill, {costs[-1]['intensity']:.2f} in the last step; the ridge point "
        "is 10.0.")
    assert decode_time.run_metrics(steps)["tpot_ms"] == pytest.approx(11.0)
    header, *rows = csv_tables(fig)[""]
    assert header == ["step (0 = prefill)", "tokens", "batch", "measured ms", "memory floor ms", "arithmetic floor ms",
                      "bytes read", "FLOPs", "FLOPs per byte"]
    keys = ("step", "tokens", "batch", "ms", "memory_ms", "compute_ms", "bytes", "flops", "intensity")
    assert [float(v) for row in rows for v in row] == pytest.approx([c[k] for c in costs for k in keys])
