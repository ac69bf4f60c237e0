"""The Generation view without a browser, on the in-process engine and a tiny random GPT-2: the callbacks called
as the page calls them (Generate, then polls until the run ends, with Dash's patches applied as the browser
applies them), steering and stopping a live run, saving and reopening runs, the Next-token view at a step, and
bad input everywhere giving a message."""
import base64
import contextvars
import json
import time

import numpy as np
import pytest
import torch
from dash import Patch, no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict
from dash.exceptions import PreventUpdate

from components import generation, ids, output, state
from tests.test_views_output import PROMPT, labels_by_id, model, sequence  # noqa: F401 (fixtures)

SESSION = "page1"


@pytest.fixture
def app(model):
    from app import create_app
    return create_app(runtime=model)  # the shared cache that run links are kept in


def apply(record: dict, patch) -> dict:
    """What the browser does with a Patch."""
    if not isinstance(patch, Patch):
        return record
    for op in patch.to_plotly_json()["operations"]:
        *path, last = op["location"]
        target = record
        for key in path:
            target = target[key]
        if op["operation"] == "Extend":
            target[last].extend(op["params"]["value"])
        elif op["operation"] == "Assign":
            target[last] = op["params"]["value"]
        else:
            raise AssertionError(f"unexpected patch operation {op}")
    return record


def start(sequence, n=5, use_cache=("on",), temperature=1.0, top_k=0, top_p=1.0, seed=3, previous=None,
          prompt=PROMPT, repetition=None, presence=None, frequency=None, stop_at="", session=SESSION):
    return generation.generate(1, sequence, prompt, n, list(use_cache), temperature, top_k, top_p, seed, repetition,
                               presence, frequency, stop_at, previous, session)


def finish(record, job, n=5, session=SESSION, timeout=60):
    """Poll as the page does until the run ends; returns the record, the chips the polls appended, and the
    live lines seen."""
    chips, lines, deadline = [], [], time.monotonic() + timeout
    while job:
        assert time.monotonic() < deadline, "the run did not end"
        patch, new_chips, job, disabled, line, message, _, _ = generation.poll(1, job, session, n)
        record = apply(record, patch)
        if isinstance(new_chips, Patch):
            chips += new_chips.to_plotly_json()["operations"][0]["params"]["value"]
        lines.append(line)
        assert disabled is (job is None)
        time.sleep(0.01)
    return record, chips, lines


def run_generate(sequence, n=5, **settings):
    record, message, new_sequence, job, disabled, line, _ = start(sequence, n=n, **settings)
    if record is no_update:
        return record, message, new_sequence
    assert disabled is False and job["since"] == 0 and record["live"] is True
    record, _, _ = finish(record, job, n)
    return record, message, new_sequence


def test_generate_gives_exactly_the_runtime_tokens(model, sequence):
    record, message, new_sequence = run_generate(sequence, n=5, temperature=1.2, top_k=50, top_p=0.95, seed=11)
    assert message == "" and new_sequence is no_update  # already at the prompt
    reference = model.generate(sequence["ids"], max_new_tokens=5, temperature=1.2, top_k=50, top_p=0.95, seed=11)
    steps = list(reference)
    assert record["new_ids"] == reference.new_ids == [s.token_id for s in steps]
    assert record["prompt_ids"] == sequence["ids"] and record["stop_reason"] == "max_new_tokens"
    assert record["live"] is False and json.loads(json.dumps(record)) == record  # plain JSON all the way
    cfg = model.config
    for n, (kept, step) in enumerate(zip(record["steps"], steps)):
        assert kept["id"] == step.token_id and kept["text"] == step.token.text and kept["rank"] == step.sampling.rank
        assert kept["chip"] == generation.readable(step.token)
        assert kept["prob"] == pytest.approx(float(step.sampling.probs[step.token_id]), abs=1e-6)
        assert len(kept["top"]) == 5 and kept["top"][0][2] >= kept["top"][-1][2]
        assert kept["cache_len"] == len(sequence["ids"]) + n and kept["batch_size"] >= 1
        assert kept["cache_bytes"] == 2 * cfg.n_layer * cfg.n_head * kept["cache_len"] * cfg.d_head * 4
        assert kept["params"]["temperature"] == 1.2 and kept["params"]["top_k"] == 50
    assert set(record["timings"]) >= {"ttft_s", "per_token_s", "tokens_per_s", "kv_cache_bytes"}


def test_the_polls_bring_chips_and_say_what_runs(model, sequence):
    record, _, _, job, _, line, _ = start(sequence, n=6)
    assert "prefill" in line or "line" in line
    record, chips, lines = finish(record, job, n=6)
    assert [c.id["index"] for c in chips] == list(range(6))
    assert [c.children for c in chips] == [s["chip"] for s in record["steps"]]
    assert lines[-1] == ""  # the live line clears at the end


def test_generate_without_cache_and_the_timing_history(model, sequence):
    first, _, _ = run_generate(sequence, n=3, seed=5)
    second, _, _ = run_generate(sequence, n=3, seed=5, use_cache=(), previous=first)
    assert second["new_ids"] == first["new_ids"] and not second["use_cache"]
    assert all(s["cache_len"] == 0 and s["batch_size"] == 1 for s in second["steps"])
    assert second["timings"]["kv_cache_bytes"] == 0
    assert [h["use_cache"] for h in second["history"]] == [True]
    block = str(generation.timings_block(second))
    assert "Compare the last runs" in block and "solo" in block


def test_greedy_generation_is_argmax(model, sequence):
    record, _, _ = run_generate(sequence, n=4, temperature=0)
    ids_ = list(sequence["ids"])
    for token in record["new_ids"]:
        assert token == int(model.trace(ids_, capture=False).logits[-1].argmax())
        ids_.append(token)


def test_penalties_and_stop_sequences_reach_the_run(model, sequence):
    record, _, _ = run_generate(sequence, n=8, temperature=0, repetition=1.5, presence=0.5, frequency=0.3)
    reference = model.generate(sequence["ids"], max_new_tokens=8, temperature=0, repetition_penalty=1.5,
                               presence_penalty=0.5, frequency_penalty=0.3).run()
    assert record["new_ids"] == reference.new_ids
    assert record["steps"][0]["params"]["repetition_penalty"] == 1.5
    text = model.tokenizer.decode(reference.new_ids[:3])
    record, _, _ = run_generate(sequence, n=8, temperature=0, repetition=1.5, presence=0.5, frequency=0.3,
                                stop_at=text[-2:])
    assert record["stop_reason"] == "stop_sequence" and len(record["new_ids"]) <= 3


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
    (-5, ["on"], 1.0, 0, 1.0, 0, "number of tokens"), (int("9" * 400), ["on"], 1.0, 0, 1.0, 0, "number of tokens"),
    (None, ["on"], 1.0, 0, 1.0, 0, "number of tokens"), ("abc", ["on"], 1.0, 0, 1.0, 0, "number of tokens"),
    (2.5, ["on"], 1.0, 0, 1.0, 0, "number of tokens"), (float("nan"), ["on"], 1.0, 0, 1.0, 0, "number of tokens"),
    (5, ["on"], -1, 0, 1.0, 0, "temperature"), (5, ["on"], float("nan"), 0, 1.0, 0, "temperature"),
    (5, ["on"], "abc", 0, 1.0, 0, "temperature"), (5, ["on"], None, 0, 1.0, 0, "temperature"),
    (5, ["on"], 1.0, -1, 1.0, 0, "top_k"), (5, ["on"], 1.0, 0, 0, 0, "top_p"), (5, ["on"], 1.0, 0, 2, 0, "top_p"),
    (5, ["on"], 1.0, 0, 1.0, "x", "seed"), (5, "yes", 1.0, 0, 1.0, 0, "KV-cache"), (5, None, 1.0, 0, 1.0, 0, "KV-cache"),
])
def test_generate_invalid_inputs_give_messages(model, sequence, n, use_cache, temperature, top_k, top_p, seed, words):
    out = generation.generate(1, sequence, PROMPT, n, use_cache, temperature, top_k, top_p, seed, None, None, None,
                              "", None, SESSION)
    record, message, new_sequence, job = out[:4]
    assert record is no_update and new_sequence is no_update and job is no_update
    assert message.startswith("Cannot generate") and words in message


@pytest.mark.parametrize("field, value, words", [
    ("repetition", 0, "repetition penalty"), ("repetition", float("inf"), "repetition penalty"),
    ("presence", 5, "presence penalty"), ("frequency", "lots", "frequency penalty"), ("stop_at", 7, "stop"),
    ("stop_at", "x" * 1000, "stop"), ("session", "../etc", "session"), ("session", None, "session"),
])
def test_bad_penalties_stops_and_sessions_give_messages(model, sequence, field, value, words):
    record, message, *_ = start(sequence, **{field: value})
    assert record is no_update and message.startswith("Cannot generate") and words in message


def test_a_number_box_out_of_its_range_says_so(model, sequence):
    """500 typed in "Tokens to generate" (max 100) reaches the server as None: the message says why."""
    _, message, *_ = start(sequence, n=None)
    assert message == ("Cannot generate: The number of tokens to generate must be a whole number from 1 to 100; "
                       "the box is empty or out of range.")


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
    assert record is no_update and "context window is full" in message


# ------------------------------------------------------------------------------------- a live run, steered

def test_a_slider_moved_mid_run_changes_the_following_steps(model, sequence):
    record, _, _, job, _, _, _ = start(sequence, n=60, temperature=1.0, seed=1)
    while len(record["steps"]) < 3:  # a few steps at temperature 1
        patch, _, job, *_ = generation.poll(1, job, SESSION, 60)
        record = apply(record, patch)
        assert job is not None
    with model.lock:  # the engine waits: the change lands between two steps
        note = generation.steer(0.3, 0, 1.0, None, None, None, job, SESSION)
    assert note == "Temperature 1 → 0.3 from the next step on (marked in the text)."
    record, chips, _ = finish(record, job, n=60)
    temps = [s["params"]["temperature"] for s in record["steps"]]
    k = temps.index(0.3)
    assert k >= 3 and set(temps[:k]) == {1.0} and set(temps[k:]) == {0.3}
    # Its probabilities, not only its label: the step's top candidates are softmax(logits / 0.3).
    for n in (k - 1, k):
        logits = model.trace(record["prompt_ids"] + record["new_ids"][:n], capture=False).logits[-1]
        top = torch.softmax(logits / temps[n], -1).topk(5)
        assert [c[0] for c in record["steps"][n]["top"]] == top.indices.tolist()
        np.testing.assert_allclose([c[2] for c in record["steps"][n]["top"]], top.values.numpy(), atol=1e-5)
    # The page marks where: a marker before chip k, a line in the figure, a sentence under the text.
    marks = [c for c in chips if c.id["type"] == generation.MARK]
    assert [m.id["index"] for m in marks] == [k] and "T 0.3" in marks[0].children
    _, rendered, _, _, fig, changes = generation.render("x", generation.TAB, record)
    assert [c.id["index"] for c in rendered if c.id["type"] == generation.MARK] == [k]
    assert any(shape.x0 == k - 0.5 for shape in fig.layout.shapes)
    assert f"from step {k}: temperature 1 → 0.3" in str(changes)


def test_steer_and_stop_without_a_live_run_do_nothing(model):
    with pytest.raises(PreventUpdate):
        generation.steer(0.5, 0, 1.0, None, None, None, None, SESSION)
    with pytest.raises(PreventUpdate):
        generation.stop(1, None, SESSION)
    with pytest.raises(PreventUpdate):
        generation.poll(1, None, SESSION, 5)


def test_stop_ends_a_run_within_a_step(model, sequence):
    record, _, _, job, _, _, _ = start(sequence, n=100)
    with model.lock:
        assert generation.stop(1, job, SESSION) == "Stopping…"
    record, _, _ = finish(record, job, n=100)
    assert record["stop_reason"] == "cancelled" and len(record["steps"]) < 100
    assert generation.stop_disabled(None) is True and generation.stop_disabled(job) is False


def test_another_page_cannot_steer_stop_or_read_a_run(model, sequence):
    record, _, _, job, _, _, _ = start(sequence, n=20, seed=2)
    assert generation.steer(0.1, 0, 1.0, None, None, None, job, "page2").startswith("Not applied: no such run")
    assert generation.stop(1, job, "page2").startswith("Could not stop the run: no such run")
    forged = {**job, "job": "A" * 24}
    assert generation.stop(1, forged, SESSION).startswith("Could not stop")
    patch, _, stopped, disabled, _, message, _, _ = generation.poll(1, job, "page2", 20)
    assert stopped is None and disabled is True and "no such run" in message
    record, _, _ = finish(record, job, n=20)  # the owner's run is untouched
    assert record["stop_reason"] == "max_new_tokens" and len(record["new_ids"]) == 20
    assert {s["params"]["temperature"] for s in record["steps"]} == {1.0}


@pytest.mark.parametrize("field", ["temperature", "top_k", "top_p", "repetition"])
def test_a_bad_live_value_is_refused_and_changes_nothing(model, sequence, field):
    record, _, _, job, _, _, _ = start(sequence, n=30)
    values = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition": None, "presence": None, "frequency": None}
    values[field] = float("nan")
    note = generation.steer(*values.values(), job, SESSION)
    assert note.startswith("Not applied")
    record, _, _ = finish(record, job, n=30)
    assert len({json.dumps(s["params"], sort_keys=True) for s in record["steps"]}) == 1


def test_engine_down_gives_a_message_and_no_hang(model, sequence, monkeypatch, tmp_path):
    monkeypatch.setenv("INSIDE_GPT2_ENGINE", f"unix:{tmp_path}/absent.sock")
    monkeypatch.setenv("INSIDE_GPT2_ENGINE_KEY", "00" * 32)
    monkeypatch.setattr(state, "engine", state.EngineHolder())
    t0 = time.monotonic()
    record, message, *_ = start(sequence)
    assert record is no_update and "engine is not answering" in message and time.monotonic() - t0 < 15


def test_a_full_engine_queues_and_says_where(model, sequence, monkeypatch):
    from model_runtime.engine import Engine
    from model_runtime.engine_service import JobBoard
    holder = state.EngineHolder()
    holder._board = JobBoard(Engine(model, slots=1), max_new_tokens=100)
    monkeypatch.setattr(state, "engine", holder)
    with model.lock:  # the first run is admitted, then waits for the model: the engine's one slot is taken
        first = start(sequence, n=20, session="pageA")
        deadline = time.monotonic() + 10
        while holder._board.engine.stats()["queued"] and time.monotonic() < deadline:
            time.sleep(0.01)
        second = start(sequence, n=20, session="pageB")
        third = start(sequence, n=5, session="pageC")
    assert "prefill" in first[5] and "number 1 in line" in second[5] and "number 2 in line" in third[5]
    for out, session, n in ((first, "pageA", 20), (second, "pageB", 20), (third, "pageC", 5)):
        record, _, _ = finish(out[0], out[3], n=n, session=session)
        assert len(record["new_ids"]) == n
    holder._board.engine.close()


# ---------------------------------------------------------------------------------- rendering a finished run

def test_render_chips_figure_and_timings(model, sequence):
    record, _, _ = run_generate(sequence, n=5, seed=2)
    prompt, chips, stop, timings, fig, changes = generation.render("x", generation.TAB, record)
    assert prompt == PROMPT and "reached the number of tokens" in stop and changes == []
    assert [c.id["index"] for c in chips] == list(range(5))
    for chip, step in zip(chips, record["steps"]):
        assert chip.children == step["chip"] and step["top"][0][1] in chip.title
        assert f"batch of {step['batch_size']}" in chip.title or "prefill" in chip.title
    bars_ = next(t for t in fig.data if t.type == "bar")
    np.testing.assert_allclose(np.asarray(bars_.y), [s["ms"] for s in record["steps"]], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(bars_.customdata), [s["batch_size"] for s in record["steps"]])
    cache_line = next(t for t in fig.data if t.name == "cached positions")
    assert list(np.asarray(cache_line.y)) == [s["cache_len"] for s in record["steps"]]
    text = str(timings)
    assert "time to first token" in text and "KV cache = 2 (keys and values) × 2 blocks × 4 heads" in text
    assert "mean batch size" in text
    with pytest.raises(PreventUpdate):
        generation.render("x", "output", record)


@pytest.mark.parametrize("bad", [{"steps": 5}, {"prompt_ids": [1], "new_ids": [2], "steps": []}, "x",
                                 {"prompt_ids": [1], "new_ids": ["a"], "steps": [{}]}])
def test_render_bad_records(bad):
    prompt, chips, stop, timings, fig, changes = generation.render("x", generation.TAB, bad)
    assert chips == [] and "Generate" in stop and "Traceback" not in stop


def test_readable_tokens(model):
    tok = model.tokenizer
    assert generation.readable(tok.token(tok.encode(" the")[0])) == " the"
    assert generation.readable(tok.token(tok.encode("\n")[0])) == "↵\n"
    assert generation.readable(tok.token(tok.eot_id)) == "<|endoftext|>"
    partial = tok.token(tok.encode("🙂")[0])
    assert generation.readable(partial) == partial.text  # half an emoji stays <0xNN>


# ----------------------------------------------------------------------------------- saving and reopening

def upload(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return "data:application/json;base64," + base64.b64encode(raw).decode()


def test_a_downloaded_run_opens_again(model, sequence):
    record, _, _ = run_generate(sequence, n=5, seed=7)
    sent, message = generation.download(1, record)
    assert message == "" and sent["filename"].endswith(".json")
    opened, message, rendered = generation.open_file(upload(sent["content"].encode()), sent["filename"])
    assert opened["new_ids"] == record["new_ids"] and opened["prompt_ids"] == record["prompt_ids"]
    assert [s["params"] for s in opened["steps"]] == [s["params"] for s in record["steps"]]
    assert opened["live"] is False and "5 tokens" in message and rendered
    _, chips, stop, _, _, _ = generation.render(rendered, generation.TAB, opened)
    assert [c.children for c in chips] == [s["chip"] for s in record["steps"]] and "Stopped after 5" in stop
    # Every view at a step of the reopened run, as with the original.
    assert generation.step_sequence(opened, 3, sequence)["ids"] == sequence["ids"] + record["new_ids"][:3]


@pytest.mark.parametrize("contents", [
    "not base64", "data:application/json;base64,!!!", upload(b"{not json"), upload([1, 2]), upload({"steps": 1}),
    upload({"prompt_ids": [1], "new_ids": [10**9], "steps": [{}]}),
    upload({"prompt_ids": [1], "new_ids": [2], "steps": [{"id": 3}]}), "x" * 5_000_000,
])
def test_a_bad_file_gives_a_message(model, contents):
    record, message, rendered = generation.open_file(contents, "run.json")
    assert record is no_update and message.startswith("Could not open that file") and rendered is no_update


def test_a_run_link_reopens_the_run(app, model, sequence):
    record, _, _ = run_generate(sequence, n=4, seed=8)
    with app.server.app_context():
        link = generation.share(1, record)
        href = link[1].href
        assert href.startswith("?view=generation&run=")
        opened, message, rendered = generation.open_link(href)
        assert opened["new_ids"] == record["new_ids"] and message == "" and rendered
        for forged, words in (("?run=AAAAAAAAAAAAAAAA", "expired"), ("?run=../../etc", "not valid"),
                              ("?run=" + "a" * 100, "not valid")):
            assert words in generation.open_link(forged)[1]
        with pytest.raises(PreventUpdate):
            generation.open_link("?view=generation")
        assert generation.share(1, {**record, "live": True, "steps": record["steps"]}) == \
            "Share a run once it has ended."
        assert "once it has ended" in generation.download(1, {**record, "live": True})[1]


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
                                "settings": "its settings (temperature 1, top-k off, top-p 1, repetition penalty "
                                            "1, presence penalty 0, frequency penalty 0, seed 4)",
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
    assert '"display": "none"' in generation.REVEAL_JS and f'"{generation.TEXT}"' in generation.REVEAL_JS
    assert generation.MAX_NEW_TOKENS == 100


def test_a_stopped_engine_is_replaced(model, sequence):
    """An engine that has stopped (closed, or its scheduler gone) is never handed a run: a new one starts."""
    board = state.engine.get()
    board.engine.close()
    record, message, _ = run_generate(sequence, n=3)
    assert message == "" and len(record["new_ids"]) == 3 and state.engine.get() is not board
