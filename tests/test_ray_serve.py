"""The engine on Ray Serve (model_runtime/ray_engine.py), on a one-machine Ray cluster started here: a tiny model
streamed through the deployment (by handle and over HTTP through Serve's proxy), several runs batched in one
replica, a cancel that frees the slot, and the web tier's client (RayJobBoard) with a real Redis, used as two
gunicorn workers would: one submits, the other polls, steers and stops.

Ray is started in its single-machine mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: its servers and Serve's proxy
listen on 127.0.0.1; only Serve's inter-replica gRPC server binds every interface, hard-coded in Serve, and Ray
token authentication guards it) with a token in the environment, so nothing is written to the home folder."""
import importlib.util
import json
import os
import secrets
import socket
import threading
import time

import pytest

if importlib.util.find_spec("ray") is None:   # imported by the fixture, after its environment is set
    pytest.skip("requirements-ray.txt installs Ray", allow_module_level=True)
import requests  # noqa: E402

from model_runtime import load_gpt2  # noqa: E402
from model_runtime.engine_service import EngineError, EngineUnavailable  # noqa: E402
from model_runtime.ray_engine import (APP_NAME, KEEP_S, ROUTE_PREFIX, RayJobBoard, build_app,  # noqa: E402
                                      run_keys)
from tests.conftest import TINY, save_random_hf_gpt2  # noqa: E402

pytestmark = pytest.mark.slow   # ~40 s: Ray and Serve take ~15 s to start on two cores

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LONG = 1000   # tokens in the runs that get steered or stopped: ~9 s on the tiny model, never over before that


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout=20.0, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny GPT-2 of conftest with GPT-2's 1,024 positions, so a run can outlast a cancel."""
    folder = tmp_path_factory.mktemp("gpt2-tiny-1024")
    save_random_hf_gpt2(folder, seed=3, **{**TINY, "n_positions": 1024})
    return str(folder), load_gpt2(str(folder), device="cpu")


@pytest.fixture(scope="module")
def cluster(tiny, redis_url):
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)   # before Ray is imported: it reads its token settings then
    import ray
    from ray import serve
    port = free_port()
    try:
        ray.init(num_cpus=2, include_dashboard=False, address="local", log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": REPO}})
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        handle = serve.run(build_app(tiny[0], slots=4, device="cpu", max_cached_tokens=4096, redis_url=redis_url,
                                     max_new_tokens=LONG, threads=1),
                           name=APP_NAME, route_prefix=ROUTE_PREFIX)
        yield handle, f"http://127.0.0.1:{port}"
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def greedy(runtime, ids, n):
    return [s.token_id for s in runtime.generate(ids, max_new_tokens=n, temperature=0)]


def stream(handle, prompt, **settings):
    return list(handle.options(stream=True).generate.remote({"prompt": prompt, "settings": settings}))


def test_stream_through_the_deployment_gives_greedy_tokens_and_batches(cluster, tiny):
    handle, base = cluster
    runtime = tiny[1]
    ids = runtime.tokenizer.encode("The cat sat on the")
    want = greedy(runtime, ids, 12)

    events = stream(handle, ids, max_new_tokens=12, temperature=0)
    assert events[0]["event"] == "accepted" and events[0]["queue_position"] in (0, 1)   # 1 until admitted
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert [s["id"] for s in steps] == want
    assert [s["index"] for s in steps] == list(range(len(want)))
    assert events[-1] == {**events[-1], "event": "end", "stop_reason": "max_new_tokens", "error": None}
    assert "logits" not in json.dumps(events) and len(json.dumps(steps[0])) < 2000   # compact records

    # Over HTTP through Serve's proxy (bound to 127.0.0.1): the same tokens, as newline-delimited JSON.
    with requests.post(f"{base}{ROUTE_PREFIX}/generate", stream=True, timeout=30,
                       json={"prompt": ids, "settings": {"max_new_tokens": 12, "temperature": 0}}) as answer:
        assert answer.status_code == 200
        lines = [json.loads(line) for line in answer.iter_lines() if line]
    assert [e["step"]["id"] for e in lines if e["event"] == "step"] == want
    bad = stream(handle, ids, max_new_tokens=12, temperature=float("nan"))
    assert bad[0]["event"] == "error" and bad[0]["kind"] == "invalid" and len(bad) == 1

    # Four runs at once share the replica's batches (max_ongoing_requests is above slots, so none waits in Ray),
    # and each still gets its own greedy tokens.
    prompts = [runtime.tokenizer.encode(text) for text in ("Hello", "Data visualization empowers users to",
                                                           "A", "One two three four five six")]
    results = [None] * 4
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(
        i, stream(handle, prompts[i], max_new_tokens=40, temperature=0))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for prompt, events in zip(prompts, results):
        assert [e["step"]["id"] for e in events if e["event"] == "step"] == greedy(runtime, prompt, 40)
    assert max(e["step"]["batch_size"] for events in results for e in events if e["event"] == "step") >= 2


def test_cancelling_a_stream_frees_its_slot(cluster, tiny):
    handle, _ = cluster
    ids = tiny[1].tokenizer.encode("The cat sat on the")
    before = handle.stats.remote().result()
    assert before["running"] == 0 and before["slots"] == 4
    generator = handle.options(stream=True).generate.remote({"prompt": ids, "settings": {"max_new_tokens": LONG}})
    events = iter(generator)
    assert next(events)["event"] == "accepted"
    assert next(events)["event"] == "step" and next(events)["event"] == "step"
    assert handle.stats.remote().result()["running"] == 1
    generator.cancel()   # as a closed connection: Serve cancels the request, the replica cancels the job
    after = wait_for(lambda: (s := handle.stats.remote().result())["running"] == 0 and s, timeout=10)
    assert 2 <= after["tokens"] - before["tokens"] < LONG / 2   # it stopped early, not at the end


def poll_all(board, job, owner, until=lambda answer, steps: answer["done"], timeout=30.0):
    """Poll like a page (each time from where it got to) until `until`; returns the last answer and all steps."""
    steps, answer = [], None

    def more():
        nonlocal answer
        answer = board.poll(job, owner, len(steps))
        steps.extend(answer["steps"])
        return until(answer, steps)
    wait_for(more, timeout=timeout, every=0.02)
    return answer, steps


def test_web_workers_share_runs_through_redis(cluster, tiny, redis_url):
    import redis
    _, base = cluster
    runtime = tiny[1]
    # Two web workers' boards: one submits, the other polls, steers and stops.
    a = RayJobBoard(f"ray:{base}", redis_url=redis_url, max_new_tokens=LONG)
    b = RayJobBoard(base, redis_url=redis_url, max_new_tokens=LONG)
    ids = runtime.tokenizer.encode("Data visualization empowers users to")

    job = a.submit(ids, {"max_new_tokens": 15, "temperature": 0}, "page-alice")["job"]
    answer, steps = poll_all(b, job, "page-alice")
    assert [s["id"] for s in steps] == greedy(runtime, ids, 15)
    assert answer["stop_reason"] == "max_new_tokens" and answer["stop_message"] and answer["timings"]["new_tokens"] == 15
    assert answer["prompt_tokens"] == len(ids) and answer["use_cache"] is True

    # Forged ids, another page's run, hostile values: one message, nothing changes.
    for call in (lambda: b.poll(job, "page-mallory", 0), lambda: b.update(job, "page-mallory", {"temperature": 2.0}),
                 lambda: b.cancel(job, "page-mallory"), lambda: b.poll("x" + job[1:], "page-alice", 0),
                 lambda: b.poll("../" + job, "page-alice", 0), lambda: b.cancel(None, "page-alice")):
        with pytest.raises(EngineError, match="no such run"):
            call()
    for call in (lambda: b.poll(job, "page-alice", -1),
                 lambda: a.submit(ids, {"max_new_tokens": -5}, "page-alice"),
                 lambda: a.submit(ids, {"max_new_tokens": 10**9}, "page-alice"),
                 lambda: a.submit(ids, {"temperature": float("nan")}, "page-alice"),
                 lambda: a.submit([10**9], {}, "page-alice"),
                 lambda: b.update(job, "page-alice", {"temperature": 0.5})):   # that run has ended
        with pytest.raises(EngineError):
            call()
    assert len(b.poll(job, "page-alice", 0)["steps"]) == 15

    # A long run: steered from the other worker mid-run, then stopped from it.
    job = a.submit(ids, {"max_new_tokens": LONG, "temperature": 0}, "page-alice")["job"]
    poll_all(b, job, "page-alice", until=lambda answer, steps: len(steps) >= 3)
    assert b.update(job, "page-alice", {"temperature": 0.5, "top_k": 7})["from_step"] >= 3
    poll_all(b, job, "page-alice", until=lambda answer, steps: steps and steps[-1]["params"]["temperature"] == 0.5)
    assert b.cancel(job, "page-alice") == {"cancelled": True}
    answer, steps = poll_all(b, job, "page-alice")
    assert answer["stop_reason"] == "cancelled" and 3 < len(steps) < LONG / 2
    temperatures = [s["params"]["temperature"] for s in steps]
    changed = temperatures.index(0.5)
    assert set(temperatures[:changed]) == {0} and set(temperatures[changed:]) == {0.5}
    assert all(s["params"]["top_k"] == 7 for s in steps[changed:])

    # A page's new run stops its previous one (a refused one does not); every key expires.
    first = a.submit(ids, {"max_new_tokens": LONG}, "page-bob")["job"]
    poll_all(a, first, "page-bob", until=lambda answer, steps: len(steps) >= 1)
    with pytest.raises(EngineError, match="token ids"):
        a.submit([10**9], {"max_new_tokens": 3}, "page-bob")
    assert not b.poll(first, "page-bob", 0)["done"]
    second = a.submit(ids, {"max_new_tokens": 3}, "page-bob")["job"]
    assert poll_all(b, first, "page-bob")[0]["stop_reason"] == "cancelled"
    assert poll_all(b, second, "page-bob")[0]["stop_reason"] == "max_new_tokens"
    store = redis.Redis.from_url(redis_url)
    for key in run_keys(second).values():
        assert store.ttl(key) in (-2, *range(1, KEEP_S + 1))   # gone, or expiring

    # The engine's stats, added up over replicas (one here) from what they put in Redis.
    stats = wait_for(lambda: (s := b.stats())["running"] == 0 and s)
    assert stats["replicas"] == 1 and stats["slots"] == 4 and stats["mean_batch"] >= 1

    # An engine that is not there: a clear EngineUnavailable, quickly.
    gone = RayJobBoard(f"http://127.0.0.1:{free_port()}", redis_url=redis_url)
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="not answering"):
        gone.submit(ids, {"max_new_tokens": 3}, "page-carol")
    assert time.monotonic() - started < 5
