"""One engine runs every generation on a machine, batching their decode steps (continuous batching).

    engine = Engine(load_gpt2("gpt2"), slots=16)
    job = engine.submit("The cat", max_new_tokens=20, temperature=0.8, seed=1)
    for step in job:              # the same Step records as model.generate, plus step.batch_size
        print(step.token.text, step.batch_size)
    job.update(temperature=0.3)   # from the next step on
    job.cancel()                  # leaves the batch at the next step boundary

Decoding is bound by reading the weights once per step, so one forward pass over the newest token of 16
sequences costs far less than 16 passes. A scheduler thread loops:

1. admit queued jobs while a slot is free and the cache budget allows (first come, first served);
2. prefill at most `prefill_chunk` prompt tokens (part of one long prompt, or several short ones back to back),
   so a long prompt delays the running jobs by one chunk at a time; when a prompt is done, its first token is
   drawn and its cache is copied into the slot cache, where it joins the batch;
3. one batched decode step over every running job: each row is a sequence at its own position (GPT-2's learned
   positions make this simple: `wpe[pos_b]`, keys written at column pos_b of row b, a key mask hides the rest);
   each job draws its token with its own settings and generator, exactly as `Generation` does;
4. jobs that stopped leave; the last row moves into the freed one, so rows stay packed at 0..B-1 and the
   attention reads views `K[:B, :, :S]` (S = the longest running sequence), not the whole cache.

A batched step is not bit-identical to a solo one (other matrix kernels for many rows): logits agree to about
1e-6, so a seeded draw can differ from a solo run only where two tokens are that close to a tie.

Runs without the KV cache (`use_cache=False`, the page's comparison) are served solo between batched steps.
"""
from __future__ import annotations

import atexit
import logging
import math
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence

import torch

from .generate import Run, Step
from .messages import N_, PeopleMessage
from .model import LayerCache, SlotLayer
from .sampling import SamplingParams, make_generator

UPDATABLE = ("temperature", "top_k", "top_p", "repetition_penalty", "presence_penalty", "frequency_penalty")
CAPACITY_STEP = 64   # the slot cache grows by this many positions (fewer reallocations than one at a time)


_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@atexit.register
def _close_engines() -> None:
    """A scheduler thread still inside a torch call while the interpreter shuts down aborts the process
    ("terminate called without an active exception"): stop them first."""
    for engine in list(_engines):
        engine.close()


class EngineFull(PeopleMessage, RuntimeError):
    """The queue is full, or the engine has stopped; the message is for people."""


class RunRefused(PeopleMessage, ValueError):
    """A run this engine cannot hold; the message is for people."""


class Job(Run):
    """One generation inside the engine. Iterate it for its steps (blocks until each is decoded); `update`,
    `cancel`, `stop_reason`, `timings` and `queue_position` are safe from any thread."""

    def __init__(self, engine: "Engine", runtime, prompt_or_ids, use_cache: bool = True, on_step=None,
                 **settings):
        super().__init__(runtime, prompt_or_ids, **settings)
        self.engine, self.use_cache = engine, use_cache
        self.on_step = on_step                 # called with each Step on the engine's thread, instead of queueing it
        self.generator = make_generator(self.params.seed, "cpu")
        self.max_len = min(len(self.prompt_ids) + self.max_new_tokens, runtime.config.n_ctx)
        self.submitted = time.perf_counter()
        self.started: float | None = None      # when its prefill began
        self.prefilled = 0                     # prompt tokens in its prefill cache so far
        self.prefill_cache: list[LayerCache] | None = None
        self.prefill_seconds = 0.0
        self._pending: dict | None = None      # settings to apply before the next draw
        self.error: str | None = None          # what failed, when stop_reason is "error"
        self._steps: queue.Queue = queue.Queue()
        self._done = threading.Event()

    # -- what callers use

    def update(self, **settings) -> None:
        """Change sampling settings from the next step on (temperature, top_k, top_p, penalties). Checked now:
        a bad value raises ValueError and changes nothing."""
        unknown = set(settings) - set(UPDATABLE)
        if unknown:
            raise ValueError(f"only {', '.join(UPDATABLE)} can change during a run; not {', '.join(sorted(unknown))}")
        merged = {**(self._pending or {}), **settings}
        SamplingParams(**{**self._params_dict(), **merged})  # validates; raises ValueError
        self._pending = merged

    def __iter__(self) -> Iterator[Step]:
        while True:
            step = self._steps.get()
            if step is None:
                return
            yield step

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended; True if it has."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def queue_position(self) -> int:
        """1 for the next job to be admitted, 2 behind it, ...; 0 once admitted."""
        return self.engine._queue_position(self)

    # -- used by the engine's thread

    def _params_dict(self) -> dict:
        p = self.params
        return {name: getattr(p, name) for name in (*UPDATABLE, "seed")}

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            self.params = SamplingParams(**{**self._params_dict(), **pending})

    def _emit(self, logits: torch.Tensor, seconds: float, batch_size: int) -> Step:
        self._apply_pending()
        t0 = time.perf_counter()
        record = self._record(logits, self.generator)
        cache_len = len(self.ids) if self.use_cache else 0
        self.kv_cache_bytes = cache_len * self.engine.bytes_per_position if self.use_cache else 0
        step = self._step(record, logits, seconds + time.perf_counter() - t0, cache_len, batch_size=batch_size)
        if self.on_step is not None:
            self.on_step(step)
        else:
            self._steps.put(step)
        return step

    def _finish(self, reason: str) -> None:
        """The job ends: `reason` unless its last step already set one."""
        self.stop_reason = self.stop_reason or reason
        self.prefill_cache = None
        self._steps.put(None)
        self._done.set()


class SlotCache:
    """Keys and values of every running sequence, per layer [rows, H, capacity, D]; row b is the b-th running
    job. Grows (rows and positions) as jobs need it and is released when the engine is idle."""

    def __init__(self, config, device, dtype):
        self.config, self.device, self.dtype = config, device, dtype
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []

    @property
    def rows(self) -> int:
        return self.k[0].size(0) if self.k else 0

    @property
    def capacity(self) -> int:
        return self.k[0].size(2) if self.k else 0

    def ensure(self, rows: int, length: int, max_rows: int) -> None:
        """Room for `rows` sequences of `length` positions, keeping what is there. Rows grow by doubling (up to
        `max_rows`) so that jobs joining one by one do not copy the whole cache each time."""
        if rows <= self.rows and length <= self.capacity:
            return
        cfg = self.config
        new_rows = min(max_rows, max(rows, 2 * self.rows, 1))
        new_cap = min(cfg.n_ctx, max(self.capacity, CAPACITY_STEP * math.ceil(length / CAPACITY_STEP)))
        shape = (new_rows, cfg.n_head, new_cap, cfg.d_head)
        for kv in (self.k, self.v):
            old = list(kv)
            kv[:] = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(cfg.n_layer)]
            for grown, was in zip(kv, old):
                grown[:was.size(0), :, :was.size(2)] = was

    def write(self, row: int, cache: list[LayerCache]) -> None:
        """Put one sequence's cache (per layer k, v [1, H, S, D]) into a row."""
        S = cache[0][0].size(2)
        for layer, (k, v) in enumerate(cache):
            self.k[layer][row, :, :S] = k[0]
            self.v[layer][row, :, :S] = v[0]

    def move(self, src: int, dst: int, length: int) -> None:
        for kv in (self.k, self.v):
            for t in kv:
                t[dst, :, :length] = t[src, :, :length]

    def layers(self, positions: torch.Tensor, length: int) -> list[SlotLayer]:
        """What the model reads for a batched step: row b's new token goes to column positions[b]; `length` is
        max(positions) + 1."""
        return [SlotLayer(k, v, positions, length) for k, v in zip(self.k, self.v)]

    def release(self) -> None:
        self.k, self.v = [], []


class Engine:
    """Owns the model's generation for a whole machine. See the module's docstring.

    slots: sequences decoded together at most. max_cached_tokens: bound on the padded slot cache (rows x the
    longest job's length), which is what memory holds; a job that could never fit alone is refused at once.
    prefill_chunk: prompt tokens per prefill forward between decode steps. max_queue: jobs waiting at most."""

    def __init__(self, runtime, slots: int | None = None, max_cached_tokens: int | None = None,
                 prefill_chunk: int = 128, max_queue: int = 256, max_seconds: float | None = None):
        cfg = runtime.config
        on_gpu = runtime.device.type == "cuda"
        self.runtime = runtime
        self.slots = slots or (64 if on_gpu else 16)   # a GPU step is launch-bound: many rows cost little more
        # At least one full context, so that any run the model can take fits alone (a 1-slot engine included).
        self.max_cached_tokens = max_cached_tokens or max(cfg.n_ctx, self.slots * cfg.n_ctx // (1 if on_gpu else 2))
        if self.max_cached_tokens < 1:
            raise ValueError("max_cached_tokens must be at least 1")
        self.prefill_chunk = max(1, int(prefill_chunk))
        self.max_queue = max_queue
        self.max_seconds = max_seconds
        self.bytes_per_position = 2 * cfg.n_layer * cfg.d_model * runtime.dtype.itemsize
        self.cache = SlotCache(cfg, runtime.device, runtime.dtype)
        self._queue: deque[Job] = deque()
        self._prefilling: Job | None = None
        self._running: list[Job] = []          # row b of the slot cache is _running[b]
        self._solo: list[Job] = []             # use_cache=False runs
        self._wake = threading.Condition()
        self._closed = False
        self._counters = {"decode_steps": 0, "decode_rows": 0, "tokens": 0, "prefill_chunks": 0}
        self._recent: deque[tuple[float, int]] = deque(maxlen=512)   # (time, tokens) per scheduler round
        self._thread = threading.Thread(target=self._loop, name="gpt2-engine", daemon=True)
        self._thread.start()
        _engines.add(self)

    # ------------------------------------------------------------------------------------------------ public

    def submit(self, prompt_or_ids: str | Sequence[int], *, use_cache: bool = True, on_step=None,
               **settings) -> Job:
        """A new job (queued; it joins the batch after its prefill). The keyword settings of `model.generate`:
        max_new_tokens, temperature, top_k, top_p, seed, stop, penalties, max_seconds. `on_step(step)`, if
        given, receives each step on the engine's thread (keep it quick) instead of the job's iterator. Raises
        ValueError for bad settings or a prompt the model cannot take, EngineFull when the queue is full."""
        settings.setdefault("max_seconds", self.max_seconds)
        job = Job(self, self.runtime, prompt_or_ids, use_cache=use_cache, on_step=on_step, **settings)
        if use_cache and job.max_len > self.max_cached_tokens:
            raise RunRefused(N_("this run needs {needed} cached positions; this engine holds at most {most} (ask "
                                "for fewer tokens or a shorter prompt)"), needed=job.max_len, most=self.max_cached_tokens)
        with self._wake:
            if not self.alive:
                raise EngineFull(N_("The generation engine has shut down."))
            reason = job._cannot_start()
            if reason:
                job._finish(reason)
                return job
            if len(self._queue) >= self.max_queue:
                raise EngineFull(N_("The generation engine is full: {n} generations are already waiting; try again "
                                    "in a moment."), n=len(self._queue))
            self._queue.append(job)
            self._wake.notify()
        return job

    def stats(self) -> dict:
        """What the engine is doing now and has done since it started."""
        with self._wake:
            c = dict(self._counters)
            now = time.perf_counter()
            recent = [(t, n) for t, n in self._recent if now - t <= 10]
            return {
                "running": len(self._running) + len(self._solo), "queued": len(self._queue),
                "prefilling": self._prefilling is not None, "slots": self.slots,
                "cached_tokens": self.cache.rows * self.cache.capacity,
                "max_cached_tokens": self.max_cached_tokens,
                "mean_batch": c["decode_rows"] / c["decode_steps"] if c["decode_steps"] else 0.0,
                "tokens_per_s": sum(n for _, n in recent) / max(now - recent[0][0], 1e-3) if len(recent) > 1 else 0.0,
                **c, "device": str(self.runtime.device),
            }

    @property
    def alive(self) -> bool:
        """The scheduler is running and takes jobs."""
        return not self._closed and self._thread.is_alive()

    def close(self) -> None:
        """Stop the scheduler; every job still waiting or running ends as cancelled."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)

    # --------------------------------------------------------------------------------------------- internals

    def _queue_position(self, job: Job) -> int:
        """0 once admitted, or when it is next and fits (the scheduler takes it at its next round)."""
        with self._wake:
            try:
                position = self._queue.index(job) + 1
            except ValueError:
                return 0
            takes_it_now = self._fits(job) and not (job.use_cache and self._prefilling is not None)
            return 0 if position == 1 and takes_it_now else position

    def _fits(self, job: Job) -> bool:
        """A slot is free and the padded cache, with this job, stays within the budget."""
        if not job.use_cache:
            return len(self._running) + len(self._solo) + (self._prefilling is not None) < self.slots
        members = self._running + ([self._prefilling] if self._prefilling else [])
        if len(members) + len(self._solo) >= self.slots:
            return False
        longest = max([job.max_len] + [j.max_len for j in members])
        return (len(members) + 1) * longest <= self.max_cached_tokens

    def _loop(self) -> None:
        try:
            self._schedule()
        except BaseException:  # noqa: BLE001 - the scheduler must not vanish silently: `alive` turns False, and
            logging.getLogger(__name__).exception("the engine's scheduler stopped")  # holders start a new one
            raise

    def _schedule(self) -> None:
        with torch.inference_mode():
            while True:
                with self._wake:
                    while not self._closed and not (self._queue or self._prefilling or self._running or self._solo):
                        self.cache.release()
                        self._wake.wait()
                    if self._closed:
                        break
                tokens = 0
                try:
                    tokens += self._prefill_round()
                    if self._running:
                        tokens += self._decode_step()
                    for job in list(self._solo):
                        tokens += self._solo_step(job)
                except Exception as error:  # a failed forward ends the jobs it held; the engine goes on
                    self._fail_all(error)
                with self._wake:
                    self._counters["tokens"] += tokens
                    self._recent.append((time.perf_counter(), tokens))
        for job in [*self._queue, *([self._prefilling] if self._prefilling else []), *self._running, *self._solo]:
            job._finish("cancelled")

    def _admit(self) -> None:
        """Cancelled jobs leave the queue; the first waiting job starts its prefill if it fits (first come,
        first served: a large job at the head is not overtaken, so it cannot starve)."""
        for job in [j for j in self._queue if j._cancelled]:
            self._queue.remove(job)
            job._finish("cancelled")
        while self._queue and self._fits(self._queue[0]):
            if self._queue[0].use_cache and self._prefilling is not None:
                break  # one prefill at a time
            job = self._queue.popleft()
            job.started = time.perf_counter()
            if job.use_cache:
                self._prefilling = job
            else:
                self._solo.append(job)

    def _forward(self, idx: torch.Tensor, past) -> tuple[torch.Tensor, list]:
        with self.runtime.lock:  # shared with the page's traces: forward passes take turns
            return self.runtime.model(idx, past)

    def _prefill_round(self) -> int:
        """Prefill up to `prefill_chunk` prompt tokens between two decode steps: part of one long prompt, or
        several short ones back to back (a class pressing Generate together gets its first tokens together).
        Returns the tokens drawn (one per prompt finished)."""
        budget, drawn = self.prefill_chunk, 0
        while budget > 0:
            with self._wake:
                self._admit()
            if self._prefilling is None:
                break
            used, finished = self._prefill_chunk(budget)
            budget, drawn = budget - max(used, 1), drawn + finished
        return drawn

    def _prefill_chunk(self, budget: int) -> tuple[int, int]:
        """One forward over the next (at most `budget`) prompt tokens of the job being prefilled. Returns the
        tokens read and whether the prompt is done (its first token drawn)."""
        job = self._prefilling
        if job._cancelled:
            self._prefilling = None
            job._finish("cancelled")
            return 0, 0
        t0 = time.perf_counter()
        chunk = job.prompt_ids[job.prefilled:job.prefilled + budget]
        idx = torch.tensor([chunk], device=self.runtime.device)
        logits, job.prefill_cache = self._forward(idx, job.prefill_cache)
        job.prefilled += len(chunk)
        job.prefill_seconds += time.perf_counter() - t0
        with self._wake:
            self._counters["prefill_chunks"] += 1
        if job.prefilled < len(job.prompt_ids):
            return len(chunk), 0
        # The prompt is in: draw the first token, and the job joins the batch in the next free row.
        step = job._emit(logits[0, -1].to("cpu", torch.float32), job.prefill_seconds, batch_size=1)
        if not step.stop_reason:
            row = len(self._running)
            self.cache.ensure(row + 1, max(j.max_len for j in self._running + [job]), self.slots)
            self.cache.write(row, job.prefill_cache)
        with self._wake:
            self._prefilling = None
            if step.stop_reason:
                job._finish(step.stop_reason)
            else:
                self._running.append(job)
                job.prefill_cache = None
        return len(chunk), 1

    def _decode_step(self) -> int:
        """One forward over the newest token of every running job; each draws its next token."""
        self._leave([j for j in self._running if j._interrupted(j.started)], interrupted=True)
        if not self._running:
            return 0
        jobs = self._running
        B = len(jobs)
        device = self.runtime.device
        positions = [len(j.ids) - 1 for j in jobs]   # where each job's newest token goes
        idx = torch.tensor([[j.ids[-1]] for j in jobs], device=device)
        t0 = time.perf_counter()
        logits, _ = self._forward(idx, self.cache.layers(torch.tensor(positions, device=device), max(positions) + 1))
        logits = logits[:, -1].to("cpu", torch.float32)
        seconds = time.perf_counter() - t0
        with self._wake:
            self._counters["decode_steps"] += 1
            self._counters["decode_rows"] += B
        finished = [job for b, job in enumerate(jobs) if job._emit(logits[b], seconds, batch_size=B).stop_reason]
        self._leave(finished)
        return B

    def _leave(self, jobs: list[Job], interrupted: bool = False) -> None:
        """Jobs leave the batch (finished, or `interrupted`: cancelled or out of time); the last rows move into
        the freed ones, so rows stay packed."""
        for job in jobs:
            with self._wake:
                row = self._running.index(job)
                last = len(self._running) - 1
                if row != last:
                    moved = self._running[last]
                    self.cache.move(last, row, len(moved.ids))
                    self._running[row] = moved
                self._running.pop()
            job._finish(job._interrupted(job.started) if interrupted else job.stop_reason)

    def _solo_step(self, job: Job) -> int:
        """One step of a run without the KV cache: the whole sequence again, alone."""
        reason = job._interrupted(job.started)
        if reason is None:
            t0 = time.perf_counter()
            logits, _ = self._forward(torch.tensor([job.ids], device=self.runtime.device), None)
            reason = job._emit(logits[0, -1].to("cpu", torch.float32), time.perf_counter() - t0, 1).stop_reason
        if reason:
            with self._wake:
                self._solo.remove(job)
            job._finish(reason)
        return 1 if reason != "cancelled" else 0

    def _fail_all(self, error: Exception) -> None:
        logging.getLogger(__name__).error("a generation step failed; its jobs end", exc_info=error)
        with self._wake:
            jobs = [*self._running, *self._solo, *([self._prefilling] if self._prefilling else [])]
            self._running, self._solo, self._prefilling = [], [], None
        for job in jobs:
            job.error = f"{type(error).__name__}: {error}"[:300]
            job._finish("error")


def run_all(engine: Engine, jobs: list[Job]) -> list[list[Step]]:
    """Every job's steps, consumed concurrently (for tests and benchmarks)."""
    out = [[] for _ in jobs]
    threads = [threading.Thread(target=lambda i=i, j=j: out[i].extend(j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out

