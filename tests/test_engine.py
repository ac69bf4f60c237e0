"""The engine (continuous batching): every job's steps equal its own KV-cached `model.generate` run, whatever
joins or leaves the batch around it; live updates, cancel, the queue, chunked prefill and stop reasons.

Determinism without sleeps: jobs that must join mid-run are submitted from another job's `on_step` callback (the
engine's own thread, so "at step k" is exact), and the engine is frozen where needed by holding the model's lock
(every forward pass takes it)."""
import threading
import time
from contextlib import contextmanager

import pytest
import torch

from model_runtime.engine import Engine, EngineFull, run_all
from model_runtime.tokenizer import EOT_ID
from tests.test_generate import eos_model

TOL = 1e-4
PROMPTS = ["The cat sat on the", "Once upon a time", "Data visualization empowers users to", "In 1905, Einstein"]


def ids(n: int, start: int = 1000) -> list[int]:
    return list(range(start, start + n))


def until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the engine"
        time.sleep(0.002)


@pytest.fixture
def make_engine(tiny_model):
    engines = []

    def make(runtime=None, **kw):
        engine = Engine(runtime or tiny_model, **kw)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@contextmanager
def frozen(runtime):
    """The engine cannot start a forward pass while this holds the model's lock."""
    with runtime.lock:
        yield


class Collect:
    """on_step callback: keeps the steps (and whatever `also(step)` returns beside each)."""

    def __init__(self, also=None):
        self.steps, self.extra, self.also = [], [], also

    def __call__(self, step):
        self.steps.append(step)
        if self.also is not None:
            self.extra.append(self.also(step))


def wait_all(jobs, timeout=60.0):
    for job in jobs:
        assert job.wait(timeout), "a job did not end"


def assert_same_run(steps, reference, tol=TOL):
    """Same tokens, same stop, logits within `tol`, same settings recorded."""
    assert [s.token_id for s in steps] == [s.token_id for s in reference]
    assert [s.stop_reason for s in steps] == [s.stop_reason for s in reference]
    for mine, ref in zip(steps, reference):
        assert mine.index == ref.index and mine.position == ref.position
        assert float((mine.logits - ref.logits).abs().max()) <= tol, mine.index
        assert mine.sampling.params == ref.sampling.params


# ------------------------------------------------------------------------------------- exactness of the batch

JOIN_LEAVE = [  # prompt length, max_new_tokens, settings
    (3, 12, dict(temperature=0)),
    (17, 5, dict(temperature=0.8, top_k=50, seed=1)),
    (40, 20, dict(temperature=1.0, top_p=0.9, repetition_penalty=1.3, seed=2)),
    (9, 8, dict(temperature=0, presence_penalty=0.5, frequency_penalty=0.3)),
]
TRIGGERS = {(0, 2): 1, (0, 4): 2, (1, 1): 3}  # (job, its step index) -> the job submitted at that moment


def join_and_leave(engine, specs, triggers):
    """Job 0 is submitted now; the others when the named step of another job is drawn (so they join while the
    batch runs). Returns the jobs and their collected steps, in spec order."""
    jobs, collected = {}, {}

    def submit(i):
        n, new, settings = specs[i]
        collected[i] = Collect(also=lambda step, i=i: on_step(i, step))
        jobs[i] = engine.submit(ids(n, 500 + 300 * i), max_new_tokens=new, on_step=collected[i], **settings)

    def on_step(i, step):
        if (i, step.index) in triggers:
            submit(triggers[i, step.index])

    submit(0)
    until(lambda: len(jobs) == len(specs) and all(j.done for j in jobs.values()), timeout=120)
    return [jobs[i] for i in range(len(specs))], [collected[i].steps for i in range(len(specs))]


def check_join_and_leave(model, engine, specs, triggers):
    jobs, steps = join_and_leave(engine, specs, triggers)
    for i, ((n, new, settings), job, got) in enumerate(zip(specs, jobs, steps)):
        reference = list(model.generate(ids(n, 500 + 300 * i), max_new_tokens=new, **settings))
        assert_same_run(got, reference)
        assert job.stop_reason == reference[-1].stop_reason == "max_new_tokens" and len(got) == new
    return jobs, steps


def test_jobs_joining_and_leaving_mid_batch_match_their_own_runs(tiny_model, make_engine):
    # prefill_chunk 16: the 40-token prompt is prefilled in 3 chunks between decode steps of the others.
    engine = make_engine(slots=8, prefill_chunk=16)
    _, steps = check_join_and_leave(tiny_model, engine, JOIN_LEAVE, TRIGGERS)
    sizes = [[s.batch_size for s in job_steps] for job_steps in steps]
    assert max(max(s) for s in sizes) >= 3                    # several ran together ...
    assert sizes[1][-1] >= 2 and sizes[2][-1] == 1          # ... job 1 left early, job 2 ended alone
    assert all(s[0] == 1 for s in sizes)                    # a first token comes from the job's own prefill


def test_join_and_leave_on_the_full_size_model(full_model):
    specs = [(3, 4, dict(temperature=0)), (17, 2, dict(temperature=0.9, seed=5)),
             (40, 3, dict(temperature=0)), (9, 3, dict(temperature=0, repetition_penalty=1.2))]
    engine = Engine(full_model, slots=4, prefill_chunk=16)
    try:
        _, steps = check_join_and_leave(full_model, engine, specs, {(0, 1): 1, (0, 2): 2, (1, 1): 3})
    finally:
        engine.close()
    assert max(s.batch_size for job_steps in steps for s in job_steps) >= 2


def test_greedy_runs_give_the_tokens_of_generate(tiny_model, make_engine):
    engine = make_engine(slots=4)
    with frozen(tiny_model):  # all four are waiting before the first forward: they decode together
        jobs = [engine.submit(p, max_new_tokens=10 + 3 * i, temperature=0) for i, p in enumerate(PROMPTS)]
    results = run_all(engine, jobs)
    for i, (prompt, job, steps) in enumerate(zip(PROMPTS, jobs, results)):
        expected = tiny_model.generate(prompt, max_new_tokens=10 + 3 * i, temperature=0).run().new_ids
        assert [s.token_id for s in steps] == expected == job.new_ids
        assert all(s.token_id == int(s.logits.argmax()) for s in steps)
    assert max(s.batch_size for steps in results for s in steps) == 4


def test_seeded_run_same_tokens_alone_and_batched(tiny_model, make_engine):
    settings = dict(max_new_tokens=16, temperature=0.9, top_k=40, top_p=0.95, seed=7)
    solo = tiny_model.generate(PROMPTS[1], **settings).run().new_ids
    engine = make_engine(slots=4)
    alone = engine.submit(PROMPTS[1], **settings)
    assert [s.token_id for s in alone] == solo
    with frozen(tiny_model):
        others = [engine.submit(p, max_new_tokens=20, temperature=1.0, seed=i)
                  for i, p in enumerate(PROMPTS) if i != 1]
        batched = engine.submit(PROMPTS[1], **settings)
    results = run_all(engine, [*others, batched])
    assert [s.token_id for s in results[-1]] == solo
    assert max(s.batch_size for s in results[-1]) >= 2  # it really shared forward passes


# ------------------------------------------------------------------------------------------------ the records

def test_batch_size_is_the_rows_of_the_forward_that_produced_the_step(tiny_model, make_engine):
    engine = make_engine(slots=4)
    rows, seen = [], {}
    original = engine._forward

    def spy(idx, past):
        rows.append(idx.shape[0])
        return original(idx, past)

    engine._forward = spy
    second = {}

    def first_step(step):
        seen.setdefault("a", []).append((step.batch_size, rows[-1]))
        if step.index == 1:
            second["job"] = engine.submit(ids(6, 3000), max_new_tokens=5, temperature=0,
                                          on_step=lambda s: seen.setdefault("b", []).append((s.batch_size, rows[-1])))

    a = engine.submit(ids(4), max_new_tokens=20, temperature=0, on_step=first_step)
    until(lambda: "job" in second)
    wait_all([a, second["job"]])
    for name in "ab":
        assert all(reported == forward for reported, forward in seen[name]), name
    # Job b joined a running job: its prefill is solo, every decode step of it is a 2-row forward.
    assert [size for size, _ in seen["b"]] == [1, 2, 2, 2, 2]
    assert 2 in [size for size, _ in seen["a"]] and seen["a"][-1][0] == 1  # a went on alone after b ended


def test_update_applies_from_the_next_step_and_changes_the_distribution(tiny_model, make_engine):
    engine = make_engine()
    job = {}

    def on_step(step):
        if step.index == 2:
            job["job"].update(temperature=0.5, top_k=5)

    collect = Collect(also=on_step)
    job["job"] = engine.submit(PROMPTS[0], max_new_tokens=8, temperature=1.0, seed=3, on_step=collect)
    wait_all([job["job"]])
    steps = collect.steps
    assert len(steps) == 8
    for step in steps:
        temperature = 1.0 if step.index <= 2 else 0.5
        p = step.sampling.params
        assert (p.temperature, p.top_k, p.seed) == ((1.0, 0, 3) if step.index <= 2 else (0.5, 5, 3))
        expected = torch.softmax(step.logits / temperature, dim=-1)
        assert torch.allclose(step.sampling.probs_before, expected, atol=1e-6)
        kept = int((step.sampling.probs > 0).sum())
        assert kept == (step.logits.numel() if step.index <= 2 else 5)


def test_update_from_another_thread_switches_once(tiny_model, make_engine):
    engine = make_engine()
    job = engine.submit(PROMPTS[2], max_new_tokens=30, temperature=1.0, seed=4)
    temperatures = []
    for step in job:
        temperatures.append(step.sampling.params.temperature)
        if step.index == 3:
            with frozen(tiny_model):   # so that the job cannot end before the update is seen
                job.update(temperature=0.25)
    switch = temperatures.index(0.25)
    assert switch >= 4 and set(temperatures[:switch]) == {1.0} and set(temperatures[switch:]) == {0.25}


def test_bad_update_raises_and_changes_nothing(make_engine):
    engine = make_engine()
    job = {}
    errors = []

    def on_step(step):
        if step.index == 1:
            job["job"].update(top_p=0.8)       # a good one pending ...
            for bad in (dict(temperature=float("nan")), dict(temperature=-1.0), dict(top_p=0.0), dict(top_p=1.5),
                        dict(top_k=-3), dict(repetition_penalty=0.0), dict(presence_penalty=float("inf")),
                        dict(seed=5), dict(max_new_tokens=100), dict(stop=["x"]), dict(bogus=1)):
                try:
                    job["job"].update(**bad)   # ... then bad ones: each refused, the good one kept
                except ValueError as why:
                    errors.append(str(why))

    collect = Collect(also=on_step)
    job["job"] = engine.submit(PROMPTS[0], max_new_tokens=5, temperature=0.7, seed=1, on_step=collect)
    wait_all([job["job"]])
    assert len(errors) == 11 and all(errors)
    params = [s.sampling.params for s in collect.steps]
    assert all((p.temperature, p.top_p, p.top_k, p.seed) == (0.7, 1.0, 0, 1) for p in params[:2])
    assert all((p.temperature, p.top_p, p.top_k, p.seed, p.repetition_penalty) == (0.7, 0.8, 0, 1, 1.0)
               for p in params[2:])
    assert job["job"].stop_reason == "max_new_tokens" and len(params) == 5


# ---------------------------------------------------------------------------------------------- cancel, queue

def test_cancel_frees_the_slot_within_one_step(make_engine):
    engine = make_engine(slots=2, max_cached_tokens=512)
    jobs = {}

    def a_step(step):
        if step.index == 5:
            jobs["a"].cancel()
            jobs["cancelled_at_b"] = len(b.steps)

    a = Collect(also=a_step)
    b = Collect(also=lambda step: engine.stats()["running"])   # at each of b's steps
    with frozen(engine.runtime):
        jobs["a"] = engine.submit(ids(5), max_new_tokens=100, temperature=0, on_step=a)
        jobs["b"] = engine.submit(ids(5, 2000), max_new_tokens=40, temperature=0, on_step=b)
    wait_all([jobs["a"], jobs["b"]])
    assert jobs["a"].stop_reason == "cancelled" and len(a.steps) == 6   # no step after the one that cancelled
    assert jobs["b"].stop_reason == "max_new_tokens" and len(b.steps) == 40
    # b's decode steps (index >= 1; step 0 is its prefill) saw two running jobs until a left, at most one step
    # after the cancel, then one.
    first_alone = next(i for i in range(1, 40) if b.extra[i] == 1)
    assert set(b.extra[1:first_alone]) == {2} and first_alone <= jobs["cancelled_at_b"] + 1
    assert set(b.extra[first_alone:]) == {1}


def test_cancel_from_another_thread(make_engine):
    engine = make_engine()
    collect = Collect()
    job = engine.submit(ids(5), max_new_tokens=100, temperature=0, on_step=collect)
    until(lambda: len(collect.steps) >= 3)
    job.cancel()
    made = len(collect.steps)
    assert job.wait(10) and job.stop_reason == "cancelled"
    assert len(collect.steps) <= made + 1
    assert engine.stats()["running"] == 0


def test_cancelled_job_frees_its_slot_for_a_queued_one_and_a_cancelled_queued_job_never_runs(tiny_model,
                                                                                            make_engine):
    engine = make_engine(slots=1, max_cached_tokens=128)
    jobs = {}

    def a_step(step):
        if step.index == 3:
            jobs["a"].cancel()

    a, b, c = Collect(also=a_step), Collect(), Collect()
    with frozen(tiny_model):
        jobs["a"] = engine.submit(ids(5), max_new_tokens=100, temperature=0, on_step=a)
        until(lambda: jobs["a"].started is not None)  # admitted
        jobs["b"] = engine.submit(ids(5, 2000), max_new_tokens=6, temperature=0, on_step=b)
        jobs["c"] = engine.submit(ids(5, 3000), max_new_tokens=6, temperature=0, on_step=c)
        assert (jobs["b"].queue_position, jobs["c"].queue_position) == (1, 2)
        jobs["c"].cancel()
    wait_all(jobs.values())
    assert jobs["a"].stop_reason == "cancelled" and len(a.steps) == 4
    assert jobs["b"].stop_reason == "max_new_tokens" and len(b.steps) == 6
    assert jobs["c"].stop_reason == "cancelled" and c.steps == [] and jobs["c"].started is None
    assert list(jobs["c"]) == [] and jobs["c"].new_ids == []


def test_full_engine_queues_then_serves_everyone(tiny_model, make_engine):
    engine = make_engine(slots=1)
    with frozen(tiny_model):
        first = engine.submit(ids(4), max_new_tokens=5, temperature=0)
        until(lambda: first.started is not None)  # admitted
        waiting = [engine.submit(ids(4, 1000 + 100 * i), max_new_tokens=5, temperature=0) for i in range(1, 4)]
        assert [j.queue_position for j in waiting] == [1, 2, 3]
        assert engine.stats()["queued"] == 3
    results = run_all(engine, [first, *waiting])
    assert all(len(steps) == 5 and j.stop_reason == "max_new_tokens" for j, steps in zip([first, *waiting], results))
    assert all(s.batch_size == 1 for steps in results for s in steps)   # one slot: never two at once
    assert all(j.queue_position == 0 for j in waiting) and engine.stats()["queued"] == 0


def test_cache_budget_queues_and_refuses_what_can_never_fit(tiny_model, make_engine):
    engine = make_engine(slots=4, max_cached_tokens=64)   # two jobs of 10 + 20 positions fit, three do not
    seen = {}
    jobs = {}

    def b_step(step):
        if step.index == 1:
            seen["c_position"] = jobs["c"].queue_position
            seen["running"] = engine.stats()["running"]

    with frozen(tiny_model):
        jobs["a"] = engine.submit(ids(10), max_new_tokens=20, temperature=0)
        until(lambda: jobs["a"].started is not None)  # admitted
        jobs["b"] = engine.submit(ids(10, 2000), max_new_tokens=20, temperature=0, on_step=Collect(also=b_step))
        jobs["c"] = engine.submit(ids(10, 3000), max_new_tokens=20, temperature=0)
        assert (jobs["b"].queue_position, jobs["c"].queue_position) == (1, 2)
    c_steps = list(jobs["c"])
    wait_all(jobs.values())
    assert seen == {"c_position": 1, "running": 2}   # a and b decode together; c waits for the budget
    assert len(c_steps) == 20 and all(j.stop_reason == "max_new_tokens" for j in jobs.values())
    assert max(s.batch_size for s in c_steps) <= 2
    with pytest.raises(ValueError, match="cached positions"):
        engine.submit(ids(60), max_new_tokens=10)            # 70 positions: never fits
    with pytest.raises(ValueError, match="cached positions"):
        engine.submit(ids(10), max_new_tokens=1000)         # capped at the context (128), still too many
    # The default budget holds at least one full context: even a 1-slot engine takes any run the model can.
    one = make_engine(slots=1)
    job = one.submit(ids(100), max_new_tokens=100, temperature=0)
    assert len(list(job)) == 28 and job.stop_reason == "context_full"


def test_queue_overflow_raises_engine_full(tiny_model, make_engine):
    engine = make_engine(slots=1, max_queue=2)
    with frozen(tiny_model):
        running = engine.submit(ids(4), max_new_tokens=3, temperature=0)
        until(lambda: running.started is not None)  # admitted
        queued = [engine.submit(ids(4, 2000 + i), max_new_tokens=3, temperature=0) for i in range(2)]
        with pytest.raises(EngineFull, match="waiting"):
            engine.submit(ids(4, 3000), max_new_tokens=3)
        assert engine.stats()["queued"] == 2
    wait_all([running, *queued])
    assert all(j.stop_reason == "max_new_tokens" and len(j.new_ids) == 3 for j in [running, *queued])


def test_short_prompts_arriving_together_get_their_first_tokens_in_one_round(tiny_model, make_engine):
    """A class pressing Generate at once: four 4-token prompts fit one 16-token prefill round, so all four
    first tokens come before any decode step (not one prompt per step)."""
    engine = make_engine(slots=8, prefill_chunk=16)
    first_at = {}

    def record_first(name):
        return lambda step: first_at.setdefault(name, engine.stats()["decode_steps"]) if step.index == 0 else None

    with frozen(tiny_model):
        jobs = [engine.submit(ids(4, 100 * i + 500), max_new_tokens=3, temperature=0, on_step=record_first(i))
                for i in range(4)]
    wait_all(jobs)
    assert first_at == {0: 0, 1: 0, 2: 0, 3: 0}
    assert all(j.stop_reason == "max_new_tokens" for j in jobs)


def test_long_prompt_delays_running_jobs_by_at_most_one_chunk(tiny_model, make_engine):
    engine = make_engine(prefill_chunk=16)
    jobs = {}

    def a_step(step):
        if step.index == 3:
            jobs["long"] = engine.submit(ids(100, 5000), max_new_tokens=3, temperature=0, on_step=long_steps)
        return engine.stats()["prefill_chunks"]

    a = Collect(also=a_step)
    long_steps = Collect(also=lambda step: len(a.steps))
    jobs["a"] = engine.submit(ids(5), max_new_tokens=40, temperature=0, on_step=a)
    until(lambda: "long" in jobs)
    wait_all(jobs.values())
    chunks = a.extra   # prefill chunks done so far, at each of a's steps
    gaps = [after - before for before, after in zip(chunks, chunks[1:])]
    assert max(gaps) <= 1                        # never two chunks between two of a's steps
    assert chunks[-1] - chunks[3] == 7           # the 100-token prompt: 7 chunks of 16 ...
    assert long_steps.extra[0] - 4 >= 6          # ... while a kept decoding (>= 6 of its steps in between)
    assert all(s.batch_size == 1 for s in a.steps[:4]) and a.steps[long_steps.extra[0]].batch_size == 2
    reference = list(tiny_model.generate(ids(100, 5000), max_new_tokens=3, temperature=0))
    assert_same_run(long_steps.steps, reference)   # the chunked prefill is exact too


# ----------------------------------------------------------------------------------------------- how jobs end

def test_stop_reasons(tiny_model, make_engine):
    engine = make_engine()
    # A stop sequence: the text of tokens 2..3 of the same seeded run.
    sampled = tiny_model.generate(PROMPTS[0], max_new_tokens=6, seed=7).run()
    stop = tiny_model.tokenizer.decode(sampled.new_ids[2:4])
    first = next(n for n in range(1, 7) if stop in tiny_model.tokenizer.decode(sampled.new_ids[:n]))
    job = engine.submit(PROMPTS[0], max_new_tokens=6, seed=7, stop=["never appears", stop])
    steps = list(job)
    assert job.stop_reason == "stop_sequence" == steps[-1].stop_reason and job.new_ids == sampled.new_ids[:first]

    eos_engine = make_engine(eos_model())
    job = eos_engine.submit("Hi", max_new_tokens=10, temperature=0)
    steps = list(job)
    assert len(steps) == 1 and steps[0].token_id == EOT_ID and job.stop_reason == "eos"

    job = engine.submit(PROMPTS[0], max_new_tokens=50, seed=0, max_seconds=0)
    assert len(list(job)) == 1 and job.stop_reason == "time_limit"   # the first token is always made
    timed = make_engine(max_seconds=0.0)                             # the engine's default limit
    job = timed.submit(PROMPTS[0], max_new_tokens=50, seed=0)
    assert len(list(job)) == 1 and job.stop_reason == "time_limit"

    n_ctx = tiny_model.config.n_ctx
    job = engine.submit(ids(n_ctx - 8), max_new_tokens=20, temperature=0)
    steps = list(job)
    assert len(steps) == 8 and job.stop_reason == "context_full" == steps[-1].stop_reason
    assert_same_run(steps, list(tiny_model.generate(ids(n_ctx - 8), max_new_tokens=20, temperature=0)))
    job = engine.submit(ids(n_ctx), max_new_tokens=5)
    assert job.done and list(job) == [] and job.stop_reason == "context_full"
    job = engine.submit(PROMPTS[0], max_new_tokens=0)
    assert job.done and list(job) == [] and job.stop_reason == "max_new_tokens"
    with pytest.raises(ValueError):
        engine.submit(ids(n_ctx + 1), max_new_tokens=5)
    with pytest.raises(ValueError):
        engine.submit(PROMPTS[0], max_new_tokens=-1)
    with pytest.raises(ValueError):
        engine.submit(PROMPTS[0], temperature=float("nan"))


def test_runs_without_cache_are_solo_and_give_the_same_tokens(tiny_model, make_engine):
    engine = make_engine(slots=4)
    with frozen(tiny_model):
        plain = engine.submit(PROMPTS[2], max_new_tokens=8, temperature=0, use_cache=False)
        cached = [engine.submit(p, max_new_tokens=12, temperature=0) for p in PROMPTS[:2]]
    plain_steps, *cached_steps = run_all(engine, [plain, *cached])
    expected = tiny_model.generate(PROMPTS[2], max_new_tokens=8, temperature=0).run().new_ids
    assert [s.token_id for s in plain_steps] == expected
    assert all(s.batch_size == 1 and s.cache_len == 0 for s in plain_steps)
    assert plain.timings["use_cache"] is False and plain.timings["kv_cache_bytes"] == 0
    assert max(s.batch_size for steps in cached_steps for s in steps) == 2   # the cached ones still batched


def test_a_failed_forward_ends_its_jobs_and_the_engine_goes_on(make_engine):
    engine = make_engine()
    original, calls = engine._forward, []

    def broken(idx, past):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated failure")
        return original(idx, past)

    engine._forward = broken
    job = engine.submit(ids(5), max_new_tokens=10, temperature=0)
    assert len(list(job)) == 2 and job.stop_reason == "error" and "simulated failure" in job.error
    job = engine.submit(ids(5), max_new_tokens=4, temperature=0)
    assert len(list(job)) == 4 and job.stop_reason == "max_new_tokens"


def test_close_cancels_what_is_left(tiny_model):
    engine = Engine(tiny_model, slots=1)
    with frozen(tiny_model):
        running = engine.submit(ids(5), max_new_tokens=50, temperature=0)
        until(lambda: running.started is not None)  # admitted
        queued = engine.submit(ids(5, 2000), max_new_tokens=5)
        closing = threading.Thread(target=engine.close)
        closing.start()
        until(lambda: engine._closed)
    closing.join(30)
    assert not closing.is_alive()
    assert running.stop_reason == queued.stop_reason == "cancelled" and queued.new_ids == []
    with pytest.raises(EngineFull):
        engine.submit(ids(5), max_new_tokens=5)


def test_stats(make_engine):
    engine = make_engine(slots=4)
    stats = engine.stats()
    assert {"running", "queued", "mean_batch", "tokens_per_s"} <= set(stats)
    assert (stats["running"], stats["queued"], stats["mean_batch"], stats["tokens_per_s"]) == (0, 0, 0.0, 0.0)
    with frozen(engine.runtime):
        jobs = [engine.submit(p, max_new_tokens=10, temperature=0) for p in PROMPTS]
    run_all(engine, jobs)
    until(lambda: engine.stats()["tokens"] == 40)   # counted at the end of the scheduler's round
    stats = engine.stats()
    assert stats["running"] == 0 and stats["queued"] == 0
    assert 1 < stats["mean_batch"] <= 4 and stats["tokens_per_s"] > 0
    assert stats["prefill_chunks"] == 4
    assert stats["decode_rows"] == 36   # every token after each job's first came from a batched step
