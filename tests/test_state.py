"""The app's data layer: one forward pass per prompt, bounded cache, clear prompt messages."""
import threading

import pytest
import torch

from components import state


@pytest.fixture
def tiny_state(tiny_model):
    state.model.set(tiny_model)
    yield tiny_model
    state.traces.clear()


def count_forwards(model, monkeypatch):
    calls = []
    original = model.trace

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)
    monkeypatch.setattr(model, "trace", counting)
    return calls


def test_concurrent_requests_share_one_forward(tiny_state, monkeypatch):
    calls = count_forwards(tiny_state, monkeypatch)
    ids = [11, 22, 33, 44]
    results = []
    threads = [threading.Thread(target=lambda: results.append(state.trace_for(ids))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 6 and all(r is results[0] for r in results)
    # The app keeps q, k, v, patterns and all the rest, but not the scores it can recompute per head.
    assert "blocks.0.attn.hook_pattern" in results[0] and "blocks.0.attn.hook_raw_scores" not in results[0]


def test_cache_is_bounded_by_count_bytes_and_age(tiny_state, monkeypatch):
    cache = state.TraceCache(max_items=2)
    for i in range(4):
        cache.get([i + 1, i + 2])
    assert len(cache) == 2
    one = cache.get([100])
    small = state.TraceCache(max_bytes=one.nbytes + 1)
    small.get([100])
    small.get([101])
    assert len(small) == 1  # the newer one stays, even alone over the budget
    old = state.TraceCache(max_age_s=0)
    calls = count_forwards(tiny_state, monkeypatch)
    old.get([5])
    old.get([5])
    assert len(calls) == 2  # expired: computed again


def test_next_logits_come_from_the_shared_cache_on_a_worker_without_the_trace(tiny_state, monkeypatch, tmp_path):
    from app import create_app
    monkeypatch.setenv("INSIDE_GPT2_CACHE_DIR", str(tmp_path))
    server = create_app(runtime=tiny_state).server
    ids = [5, 6, 7, 8]
    with server.app_context():
        expected = state.trace_for(ids).logits[-1]
        state.traces.clear()  # as on the other gunicorn worker: no trace in memory here
        calls = count_forwards(tiny_state, monkeypatch)
        assert torch.equal(state.next_logits(ids), expected) and calls == []
        assert torch.equal(state.next_logits([5, 6, 7, 9]), state.trace_for([5, 6, 7, 9]).logits[-1])
        assert len(calls) == 1  # a prompt no worker traced yet runs once
    state.traces.clear()
    assert torch.equal(state.next_logits(ids), expected)  # outside a running app: computed, not shared


@pytest.mark.parametrize("text, expected", [
    ("", "empty"), ("   \n\t ", "empty"), (None, "must be text"), (123, "must be text"),
    ("x" * 200_001, "at most 200,000"),
])
def test_prompt_messages(tiny_state, text, expected):
    sequence, message = state.prompt_to_sequence(text)
    assert sequence is None and expected in message


def test_long_prompt_keeps_the_last_tokens(tiny_state):
    sequence, message = state.prompt_to_sequence("word " * 500)
    assert len(sequence["ids"]) == tiny_state.config.n_ctx and "last 128 tokens" in message


@pytest.mark.parametrize("text", ["\x00\x01\x7f", "lone \ud800 surrogate", "\u202eRTL\u200f mark", "😀👩‍👩‍👧 日本語",
                                  "<script>alert(1)</script>"])
def test_odd_unicode_becomes_a_sequence(tiny_state, text):
    sequence, message = state.prompt_to_sequence(text)
    assert sequence["ids"] and message is None
    sequence["prompt"].encode("utf-8")  # what goes back to the page is valid UTF-8
