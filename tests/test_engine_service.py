"""The engine as a service for pages: the job board (owners, compact JSON step records, hostile values) and the
connection to an engine process over an authenticated unix socket (a down, hung or foreign engine never hangs a
request)."""
import json
import math
import os
import secrets
import socket
import threading
import time

import pytest
import torch

from model_runtime.engine import Engine
from model_runtime.engine_service import (MAX_STOP_CHARS, MAX_STOP_STRINGS, EngineConnection, EngineError,
                                          EngineUnavailable, JobBoard, serve)

PROMPT = [464, 3797, 3332, 319, 262]   # "The cat sat on the"


@pytest.fixture
def board(tiny_model):
    engine = Engine(tiny_model, slots=8)
    yield JobBoard(engine, max_new_tokens=40)
    engine.close()


def until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def poll_to_end(board, job, owner, timeout: float = 30.0):
    """Every step record (polled incrementally, as a page does) and the last reply."""
    steps, deadline = [], time.monotonic() + timeout
    while True:
        reply = board.poll(job, owner, len(steps))
        json.dumps(reply)
        steps += reply["steps"]
        if reply["done"]:
            return steps, reply
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.005)


def plain_json(value) -> bool:
    """Only JSON's own types, all the way down (no tensors, no numpy scalars)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain_json(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


def test_submit_poll_gives_compact_json_records(tiny_model, board):
    reply = board.submit(PROMPT, {"max_new_tokens": 6, "temperature": 0}, "page-a")
    assert set(reply) == {"job", "queue_position"} and len(reply["job"]) >= 20
    steps, last = poll_to_end(board, reply["job"], "page-a")
    expected = tiny_model.generate(PROMPT, max_new_tokens=6, temperature=0).run().new_ids
    assert [s["id"] for s in steps] == expected and [s["index"] for s in steps] == list(range(6))
    assert last["stop_reason"] == "max_new_tokens" and last["stop_message"] and last["timings"]["new_tokens"] == 6
    assert plain_json(last) and plain_json(steps)
    text = json.dumps({"steps": steps, **last})
    assert len(text) < 6 * 2000   # compact: a few hundred bytes per step, never a vocabulary
    for step in steps:
        assert len(step["top"]) == 5 and step["top"][0][0] == step["id"] and step["rank"] == 0
        assert step["params"]["temperature"] == 0 and step["batch_size"] >= 1 and step["ms"] > 0
        assert step["text"] == tiny_model.tokenizer.token(step["id"]).text
    assert board.stats()["running"] == 0


def test_update_and_cancel_through_the_board(tiny_model, board):
    job = board.submit(PROMPT, {"max_new_tokens": 40, "temperature": 1.0, "seed": 1}, "page-a")["job"]
    until(lambda: len(board.poll(job, "page-a")["steps"]) >= 2)
    with tiny_model.lock:   # the engine waits, so the run cannot end before the update
        seen = len(board.poll(job, "page-a")["steps"])
        assert board.update(job, "page-a", {"temperature": "0.5", "top_k": 7})["from_step"] >= seen
    until(lambda: len(board.poll(job, "page-a")["steps"]) >= seen + 4)
    with tiny_model.lock:
        board.cancel(job, "page-a")
        made = len(board.poll(job, "page-a")["steps"])
    steps, last = poll_to_end(board, job, "page-a")
    assert last["stop_reason"] == "cancelled" and len(steps) <= made + 1 < 40
    settings = [(s["params"]["temperature"], s["params"]["top_k"]) for s in steps]
    switch = settings.index((0.5, 7))
    assert switch <= seen + 1 and set(settings[:switch]) == {(1.0, 0)} and set(settings[switch:]) == {(0.5, 7)}
    with pytest.raises(EngineError, match="ended"):
        board.update(job, "page-a", {"temperature": 0.3})


def test_a_new_submit_cancels_the_page_s_previous_run(tiny_model, board):
    with tiny_model.lock:
        first = board.submit(PROMPT, {"max_new_tokens": 40}, "page-a")["job"]
        other = board.submit(PROMPT, {"max_new_tokens": 10}, "page-b")["job"]
        second = board.submit(PROMPT, {"max_new_tokens": 5}, "page-a")["job"]
    assert poll_to_end(board, first, "page-a")[1]["stop_reason"] == "cancelled"
    assert poll_to_end(board, second, "page-a")[1]["stop_reason"] == "max_new_tokens"
    assert poll_to_end(board, other, "page-b")[1]["stop_reason"] == "max_new_tokens"   # another page's: untouched


BAD_SETTINGS = [
    {"max_new_tokens": -1}, {"max_new_tokens": 0}, {"max_new_tokens": 41}, {"max_new_tokens": 10**9},
    {"max_new_tokens": 10**400}, {"max_new_tokens": 1e300}, {"max_new_tokens": float("nan")},
    {"max_new_tokens": float("inf")}, {"max_new_tokens": True}, {"max_new_tokens": "20"}, {"max_new_tokens": 2.5},
    {"max_new_tokens": None}, {"max_new_tokens": [5]},
    {"temperature": float("nan")}, {"temperature": float("inf")}, {"temperature": -1}, {"temperature": 1e9},
    {"temperature": 10**400}, {"temperature": "hot"}, {"temperature": True}, {"temperature": None},
    {"temperature": [1.0]}, {"temperature": {"x": 1}}, {"temperature": 1e-9},
    {"top_k": -1}, {"top_k": 1.5}, {"top_k": float("nan")}, {"top_p": 0}, {"top_p": 1.5}, {"top_p": float("nan")},
    {"seed": -1}, {"seed": 2**64}, {"seed": 10**400}, {"seed": 0.5}, {"repetition_penalty": 0},
    {"repetition_penalty": float("nan")}, {"presence_penalty": 5}, {"frequency_penalty": float("-inf")},
    {"bogus": 1}, {"__class__": 1}, {"max_seconds": 10**9}, {"on_step": "print"},
    {"stop": ["a"] * (MAX_STOP_STRINGS + 1)}, {"stop": ["x" * (MAX_STOP_CHARS + 1)]}, {"stop": 123},
    {"stop": [1, 2]}, {"stop": {"a": 1}}, {"use_cache": "no"}, {"use_cache": 0},
]
BAD_IDS = ["", None, 7, 1.5, [], "a" * 65, "../../etc/passwd", "job id", "job\x00", "job\n", "<script>", "ａｂ/ｃ"]


def test_hostile_values_are_refused_and_change_nothing_else(tiny_model, board):
    """While one page's run is frozen mid-way, another page sends everything wrong it can; every request gets an
    EngineError with a message, and the first page's run then goes on to its normal end with its own settings."""
    victim = board.submit(PROMPT, {"max_new_tokens": 30, "temperature": 0.8, "seed": 3}, "page-b")["job"]
    until(lambda: len(board.poll(victim, "page-b")["steps"]) >= 1)
    attempts = 0

    def refused(call, *args):
        nonlocal attempts
        attempts += 1
        with pytest.raises(EngineError) as caught:
            call(*args)
        assert len(str(caught.value)) > 10, (call.__name__, args)

    with tiny_model.lock:
        stats = board.stats()
        jobs_before = dict(board._jobs)
        for settings in BAD_SETTINGS:
            refused(board.submit, PROMPT, settings, "page-a")
            refused(board.submit, PROMPT, settings, "page-b")   # the victim's own page: its run is kept
        for settings in ("temperature=1", None, [("temperature", 1)], 5):
            refused(board.submit, PROMPT, settings, "page-a")
        for prompt in ("The cat", [], [1.5], [True], [-1], [50257], [10**400], None, [[1]],
                       list(range(tiny_model.config.n_ctx + 1))):
            refused(board.submit, prompt, {"max_new_tokens": 5}, "page-a")
            refused(board.submit, prompt, {"max_new_tokens": 5}, "page-b")
        for owner in BAD_IDS:
            refused(board.submit, PROMPT, {"max_new_tokens": 5}, owner)
            refused(board.poll, victim, owner)
            refused(board.update, victim, owner, {"temperature": 0.1})
            refused(board.cancel, victim, owner)
        forged = [secrets.token_urlsafe(18), victim[:-1] + ("A" if victim[-1] != "A" else "B"), victim.upper(),
                  victim + "x", *BAD_IDS]
        for job in forged:
            refused(board.poll, job, "page-b")
            refused(board.update, job, "page-b", {"temperature": 0.1})
            refused(board.cancel, job, "page-b")
        # Someone else's run: right id, wrong page.
        refused(board.poll, victim, "page-a")
        refused(board.update, victim, "page-a", {"temperature": 0.1})
        refused(board.cancel, victim, "page-a")
        # Updates of the victim's own run with values that are wrong or not changeable during a run.
        for settings in [{"temperature": float("nan")}, {"top_p": 0}, {"top_k": -2}, {"seed": 1},
                         {"max_new_tokens": 5}, {"stop": ["x"]}, {"use_cache": False}, {"bogus": 1},
                         {"temperature": True}, {"temperature": 10**400}, "temperature=0.1", None]:
            refused(board.update, victim, "page-b", settings)
        for since in (-1, "0", float("nan"), 10**400, True, None, 10**7):
            refused(board.poll, victim, "page-b", since)
        assert board.stats()["queued"] == stats["queued"] and board._jobs == jobs_before
    assert attempts > 200
    steps, last = poll_to_end(board, victim, "page-b")
    assert last["stop_reason"] == "max_new_tokens" and len(steps) == 30
    assert all((s["params"]["temperature"], s["params"]["top_k"]) == (0.8, 0) for s in steps)
    alone = tiny_model.generate(PROMPT, max_new_tokens=30, temperature=0.8, seed=3).run().new_ids
    assert [s["id"] for s in steps] == alone


def test_board_refuses_when_the_engine_is_full(tiny_model):
    engine = Engine(tiny_model, slots=1, max_queue=1)
    board = JobBoard(engine)
    try:
        with tiny_model.lock:
            running = board.submit(PROMPT, {"max_new_tokens": 3}, "page-a")["job"]
            until(lambda: engine.stats()["queued"] == 0)
            queued = board.submit(PROMPT, {"max_new_tokens": 3}, "page-b")
            assert queued["queue_position"] == 1
            with pytest.raises(EngineError, match="full"):
                board.submit(PROMPT, {"max_new_tokens": 3}, "page-c")
        assert poll_to_end(board, running, "page-a")[1]["stop_reason"] == "max_new_tokens"
        assert poll_to_end(board, queued["job"], "page-b")[1]["stop_reason"] == "max_new_tokens"
    finally:
        engine.close()


# ------------------------------------------------------------------------------------------- over a socket

@pytest.fixture
def private_folder(tmp_path):
    folder = tmp_path / "engine"
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    return folder


def test_engine_connection_over_a_unix_socket(tiny_model, board, private_folder):
    address, key = str(private_folder / "engine.sock"), secrets.token_bytes(32)
    threading.Thread(target=serve, args=(board, address, key), daemon=True).start()
    client = EngineConnection(address, key, timeout=10)
    until(lambda: _answers(client))
    assert os.stat(address).st_mode & 0o777 == 0o600

    job = client.submit(PROMPT, {"max_new_tokens": 5, "temperature": 0}, "page-a")["job"]
    steps, last = poll_to_end(client, job, "page-a")
    assert [s["id"] for s in steps] == tiny_model.generate(PROMPT, max_new_tokens=5, temperature=0).run().new_ids
    assert last["stop_reason"] == "max_new_tokens"

    with tiny_model.lock:
        job = client.submit(PROMPT, {"max_new_tokens": 40, "temperature": 1.0}, "page-a")["job"]
        client.update(job, "page-a", {"temperature": 0.5})
        with pytest.raises(EngineError, match="no such run"):
            client.cancel(job, "page-b")                     # refusals arrive as EngineError, with the message
        with pytest.raises(EngineError):
            client.submit(PROMPT, {"max_new_tokens": float("nan")}, "page-a")
        assert client.cancel(job, "page-a") == {"cancelled": True}
    steps, last = poll_to_end(client, job, "page-a")
    assert last["stop_reason"] == "cancelled" and len(steps) <= 1
    assert all(s["params"]["temperature"] == 0.5 for s in steps)

    # A client with another key is refused (and the engine goes on serving the right one).
    start = time.monotonic()
    with pytest.raises(EngineUnavailable):
        EngineConnection(address, secrets.token_bytes(32), timeout=2).stats()
    assert time.monotonic() - start < 3
    assert client.stats()["running"] == 0


def _answers(client) -> bool:
    try:
        client.stats()
        return True
    except EngineUnavailable:
        return False


def _unavailable_within(client, seconds: float) -> str:
    """client.stats() must raise EngineUnavailable within `seconds` (checked from another thread, so that a hang
    fails the test instead of stalling the suite)."""
    outcome = []

    def call():
        start = time.monotonic()
        try:
            client.stats()
            outcome.append(("answered", 0.0))
        except EngineUnavailable as why:
            outcome.append((str(why), time.monotonic() - start))
        except Exception as why:  # noqa: BLE001
            outcome.append((f"{type(why).__name__}: {why}", -1.0))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds + 5)
    assert outcome, f"the call hung for more than {seconds + 5:g} s"
    message, took = outcome[0]
    assert 0 <= took <= seconds, message
    return message


def test_a_missing_stopped_or_hung_engine_never_hangs_a_request(private_folder):
    key = secrets.token_bytes(32)
    # Nothing there at all.
    assert "not answering" in _unavailable_within(EngineConnection(str(private_folder / "none.sock"), key, 1), 2)
    # A socket file left behind by an engine that stopped (nobody listens).
    stale = str(private_folder / "stale.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(stale)
    dead.close()
    assert "not answering" in _unavailable_within(EngineConnection(stale, key, 1), 2)
    # An engine that is hung: it listens, but never accepts or answers.
    hung_address = str(private_folder / "hung.sock")
    hung = socket.socket(socket.AF_UNIX)
    hung.bind(hung_address)
    hung.listen(8)
    try:
        _unavailable_within(EngineConnection(hung_address, key, 1), 2.5)
    finally:
        hung.close()


def test_an_engine_that_stops_answering_mid_session(tiny_model, board, private_folder):
    """A connected client whose engine stops replying gets EngineUnavailable after its timeout."""
    address, key = str(private_folder / "engine.sock"), secrets.token_bytes(32)
    threading.Thread(target=serve, args=(board, address, key), daemon=True).start()
    client = EngineConnection(address, key, timeout=1)
    until(lambda: _answers(client))
    release = threading.Event()
    original = board.stats

    def stuck():
        release.wait(10)
        return original()

    board.stats = stuck
    try:
        assert "within 1 s" in _unavailable_within(client, 2)
    finally:
        release.set()
    board.stats = original
    until(lambda: _answers(client))   # a fresh connection works again


def test_summaries_hold_no_tensors_and_no_nan(board):
    job = board.submit(PROMPT, {"max_new_tokens": 3, "temperature": 1.3, "top_k": 20, "top_p": 0.9,
                                "repetition_penalty": 1.2, "presence_penalty": 0.5, "frequency_penalty": -0.5,
                                "stop": ["zzzz"], "seed": 9}, "page-a")["job"]
    steps, last = poll_to_end(board, job, "page-a")
    for step in steps:
        assert plain_json(step) and not any(isinstance(v, torch.Tensor) for v in step.values())
        numbers = [step["prob"], step["prob_before"], step["entropy_bits"], step["ms"],
                   *[x for row in step["top"] for x in row[2:]]]
        assert all(math.isfinite(x) for x in numbers)
        assert step["params"] == {"temperature": 1.3, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.2,
                                  "presence_penalty": 0.5, "frequency_penalty": -0.5}
    json.dumps(last, allow_nan=False)
