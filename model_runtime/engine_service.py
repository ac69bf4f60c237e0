"""The engine as a service for web pages: jobs named by unguessable ids, compact step records to poll, settings
checked as values from a page, and the same interface in-process or in an engine process of its own.

    board = JobBoard(Engine(runtime))                       # in-process (python app.py)
    board = EngineConnection("/path/engine.sock", key)      # a web worker talking to the engine process
    job = board.submit(prompt_ids, {"max_new_tokens": 20, "temperature": 0.8}, owner=page_id)["job"]
    board.poll(job, page_id, since=0)    # {"steps": [...], "done": False, "queue_position": 0, ...}
    board.update(job, page_id, {"temperature": 0.3})
    board.cancel(job, page_id)

Between processes only compact step records travel (token, top candidates, settings, timings, batch size),
never full-vocabulary tensors. The engine process (`python -m model_runtime.engine_service`) listens on a unix
socket in a private folder and accepts only clients holding its key (multiprocessing.connection's HMAC
handshake), so another local account can neither connect nor forge a job.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import secrets
import signal
import socket
import struct
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge

from .engine import UPDATABLE, Engine, EngineFull
from .messages import N_, PeopleMessage
from .generate import STOP_REASONS
from .runtime import DTYPES
from .sampling import SamplingParams

MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 64
TOP_CANDIDATES = 5


class EngineError(PeopleMessage, ValueError):
    """A request the engine refuses (bad settings, unknown job, someone else's job, full); the message is for
    people (a template and its values, translated by the app)."""


class EngineUnavailable(PeopleMessage, RuntimeError):
    """The engine is not running or not answering; the message is for people."""


# ----------------------------------------------------------------------------------------------------------
# Values from a page

def _whole(value, name: str, low: int, high: int) -> int:
    # An int is checked as it is: math.isfinite(10**400) would raise OverflowError, not refuse it.
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        raise EngineError(N_("{name} must be a whole number from {low} to {high}, not {value}"), name=name, low=low,
                          high=high, value=repr(str(value)[:40]))
    if not low <= int(value) <= high:
        raise EngineError(N_("{name} must be from {low} to {high}; got {value}"), name=name, low=low, high=high,
                          value=int(value))
    return int(value)


def checked_settings(settings, max_new_tokens: int, live: bool = False) -> dict:
    """Keyword settings for `Engine.submit` (or, with `live`, for `Job.update`) from values a page sent."""
    if not isinstance(settings, dict):
        raise EngineError(N_("the settings must be a mapping of names to values"))
    allowed = set(UPDATABLE) if live else {*UPDATABLE, "seed", "max_new_tokens", "stop", "use_cache"}
    unknown = set(settings) - allowed
    if unknown:
        raise EngineError(N_("unknown or unchangeable settings: {names}"),
                          names=", ".join(sorted(map(str, unknown)))[:200])
    try:
        params = SamplingParams.checked(**{k: v for k, v in settings.items() if k in (*UPDATABLE, "seed")})
    except ValueError as why:
        raise EngineError.of(why) from None
    out = {name: getattr(params, name) for name in UPDATABLE if name in settings}
    if live:
        return out
    out["seed"] = params.seed
    out["max_new_tokens"] = _whole(settings.get("max_new_tokens", 20), N_("The number of tokens"), 1, max_new_tokens)
    stop = settings.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not (isinstance(stop, list) and len(stop) <= MAX_STOP_STRINGS
            and all(isinstance(s, str) and len(s) <= MAX_STOP_CHARS for s in stop)):
        raise EngineError(N_("stop sequences: at most {n}, each at most {chars} characters"), n=MAX_STOP_STRINGS,
                          chars=MAX_STOP_CHARS)
    out["stop"] = [s for s in stop if s]
    use_cache = settings.get("use_cache", True)
    if not isinstance(use_cache, bool):
        raise EngineError(N_("use_cache must be true or false"))
    out["use_cache"] = use_cache
    return out


def _checked_id(value, name: str) -> str:
    if not (isinstance(value, str) and 0 < len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()):
        raise EngineError(N_("that is not a valid {name}"), name=name)
    return value


# ----------------------------------------------------------------------------------------------------------
# Compact step records

def step_summary(step, tokenizer, top: int = TOP_CANDIDATES) -> dict:
    """What a page shows of one step, JSON-able: the token, its probability and rank, the top candidates
    before and after filtering, the settings that drew it, the time and the batch it was measured in."""
    record = step.sampling
    p = record.params
    return {
        "index": step.index, "id": step.token_id, "text": step.token.text, "bytes": step.token.bytes.hex(),
        "prob": round(float(record.probs[step.token_id]), 6),
        "prob_before": round(float(record.probs_before[step.token_id]), 6), "rank": record.rank,
        "top": [[r["id"], tokenizer.token(r["id"]).text, round(r["prob_before"], 6), round(r["prob"], 6)]
                for r in record.top(top)],
        "entropy_bits": round(record.entropy_bits, 4),
        "ms": round(step.seconds * 1000, 3), "batch_size": step.batch_size,
        "cache_len": step.cache_len, "cache_bytes": step.cache_bytes,
        "params": {"temperature": p.temperature, "top_k": p.top_k, "top_p": p.top_p,
                   "repetition_penalty": p.repetition_penalty, "presence_penalty": p.presence_penalty,
                   "frequency_penalty": p.frequency_penalty},
    }


# ----------------------------------------------------------------------------------------------------------
# The board

class _Entry:
    def __init__(self, owner: str):
        self.owner = owner
        self.job = None
        self.steps: list[dict] = []
        self.ended_at: float | None = None


class JobBoard:
    """Jobs by id for web pages. Every call names the page (`owner`) that submitted the job: another page's
    job, a forged or expired id get an EngineError and change nothing. A page has at most one live job: a new
    submit cancels its previous one. Finished jobs stay readable for `keep_s` seconds."""

    def __init__(self, engine: Engine, max_new_tokens: int = 100, keep_s: float = 600, max_jobs: int = 1024):
        self.engine = engine
        self.max_new_tokens, self.keep_s, self.max_jobs = max_new_tokens, keep_s, max_jobs
        self._jobs: dict[str, _Entry] = {}
        self._live_by_owner: dict[str, str] = {}
        self._lock = threading.Lock()

    def submit(self, prompt_ids, settings, owner) -> dict:
        owner = _checked_id(owner, N_("page id"))
        kwargs = checked_settings(settings, self.max_new_tokens)
        if not (isinstance(prompt_ids, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                                     for i in prompt_ids)):
            raise EngineError(N_("the prompt must be a list of token ids"))
        self._forget_old()
        with self._lock:
            previous = self._live_by_owner.get(owner)
            if len(self._jobs) >= self.max_jobs:
                raise EngineError(N_("the engine is keeping too many runs; try again in a minute"))
        entry, job_id = _Entry(owner), secrets.token_urlsafe(18)
        tokenizer = self.engine.runtime.tokenizer
        try:
            entry.job = self.engine.submit(prompt_ids, on_step=lambda s: entry.steps.append(step_summary(s, tokenizer)),
                                           **kwargs)
        except (EngineFull, ValueError) as why:
            raise EngineError.of(why) from None
        # Only now, the new run accepted, does the page's previous one end: a refused submit changes nothing.
        if previous is not None:
            self._cancel_entry(previous)
        with self._lock:
            self._jobs[job_id] = entry
            self._live_by_owner[owner] = job_id
        return {"job": job_id, "queue_position": entry.job.queue_position}

    def poll(self, job, owner, since=0) -> dict:
        entry = self._entry(job, owner)
        since = _whole(since, "since", 0, 10**6)
        j = entry.job
        done = j.done
        steps = entry.steps[since:]   # a copy; the engine's thread only appends
        out = {"steps": steps, "done": done, "queue_position": j.queue_position,
               "stop_reason": j.stop_reason if done else None, "use_cache": j.use_cache,
               "prompt_tokens": len(j.prompt_ids)}
        if done:
            out["stop_message"] = STOP_REASONS.get(j.stop_reason, j.stop_reason)
            out["timings"] = j.timings
            if j.error:
                out["error"] = j.error
        return out

    def update(self, job, owner, settings) -> dict:
        entry = self._entry(job, owner)
        kwargs = checked_settings(settings, self.max_new_tokens, live=True)
        if entry.job.done:
            raise EngineError(N_("that run has already ended"))
        try:
            entry.job.update(**kwargs)
        except ValueError as why:
            raise EngineError.of(why) from None
        return {"from_step": len(entry.job.new_ids)}  # the first step drawn with them, give or take the one in flight

    def cancel(self, job, owner) -> dict:
        entry = self._entry(job, owner)
        entry.job.cancel()
        return {"cancelled": True}

    def stats(self) -> dict:
        return self.engine.stats()

    def _entry(self, job, owner) -> _Entry:
        job, owner = _checked_id(job, N_("run id")), _checked_id(owner, N_("page id"))
        with self._lock:
            entry = self._jobs.get(job)
        if entry is None or not secrets.compare_digest(entry.owner, owner):
            raise EngineError(N_("no such run for this page (it may have ended more than 10 minutes ago)"))
        return entry

    def _cancel_entry(self, job_id: str) -> None:
        with self._lock:
            entry = self._jobs.get(job_id)
        if entry is not None:
            entry.job.cancel()

    def _forget_old(self) -> None:
        now = time.monotonic()
        with self._lock:
            for job_id, entry in list(self._jobs.items()):
                if entry.job.done and entry.ended_at is None:
                    entry.ended_at = now
                if entry.ended_at is not None and now - entry.ended_at > self.keep_s:
                    del self._jobs[job_id]
                    if self._live_by_owner.get(entry.owner) == job_id:
                        del self._live_by_owner[entry.owner]


# ----------------------------------------------------------------------------------------------------------
# Across processes: the engine process serves the board on a unix socket

METHODS = ("submit", "poll", "update", "cancel", "stats")


def serve(board: JobBoard, address: str, authkey: bytes) -> None:
    """Answer clients on `address` (a unix socket path) forever, one thread per connection."""
    if os.path.exists(address):  # left by an engine that did not stop cleanly (the folder is private)
        os.unlink(address)
    listener = Listener(address, family="AF_UNIX", authkey=authkey)
    os.chmod(address, 0o600)
    log = logging.getLogger(__name__)
    while True:
        try:
            conn = listener.accept()
        except Exception as error:  # a client that failed the handshake: ignore it
            log.warning("refused an engine client: %s", error)
            continue
        threading.Thread(target=_answer, args=(board, conn), daemon=True).start()


def _answer(board: JobBoard, conn) -> None:
    with conn:
        while True:
            try:
                method, args = conn.recv()
            except (EOFError, OSError, ValueError, TypeError):
                return
            try:
                if method not in METHODS or not isinstance(args, (list, tuple)):
                    raise EngineError(N_("unknown engine request"))
                reply = ("ok", getattr(board, method)(*args))
            except EngineError as why:
                reply = ("refused", why.wire())
            except Exception as error:  # noqa: BLE001 - the client gets a message, the log the details
                logging.getLogger(__name__).exception("engine request failed")
                reply = ("failed", f"{type(error).__name__}")
            try:
                conn.send(reply)
            except OSError:
                return


class EngineConnection:
    """The board's interface, answered by the engine process. Each call waits at most `timeout` seconds; a
    down or hung engine raises EngineUnavailable (never a hung web request)."""

    def __init__(self, address: str, authkey: bytes, timeout: float = 10.0):
        self.address, self.authkey, self.timeout = address, authkey, timeout
        self._local = threading.local()

    def _call(self, method: str, *args):
        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._local.conn = self._connect()
            conn.send((method, args))
            if not conn.poll(self.timeout):
                raise TimeoutError
            status, value = conn.recv()
        except (OSError, EOFError, TimeoutError, ValueError, AuthenticationError) as why:
            self._local.conn = None
            if conn is not None:
                conn.close()
            if isinstance(why, TimeoutError):
                raise EngineUnavailable(N_("The generation engine did not answer within {seconds} s; try again in a "
                                           "moment."), seconds=self.timeout) from None
            raise EngineUnavailable(N_("The generation engine is not answering (it may still be loading the model, "
                                       "or it has stopped); the rest of the page works. Try again in a moment.")) \
                from None
        if status == "ok":
            return value
        if status == "refused":
            template, values = value
            raise EngineError(template, **values)
        raise EngineUnavailable(N_("The generation engine failed ({error}); it was logged."), error=value)

    def _connect(self) -> Connection:
        """multiprocessing's Client(address, authkey=...) with a deadline: its connect and key handshake block
        for ever on an engine that listens but does not answer (hung, stopped with SIGSTOP, its accept loop
        stuck). Here every read and write on the socket gives up after `timeout` seconds (SO_RCVTIMEO and
        SO_SNDTIMEO; a read that times out raises OSError)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            sock.settimeout(None)  # blocking again, as Connection expects, but bounded by the options below
            seconds = max(self.timeout, 0.001)
            limit = struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
            conn = Connection(sock.detach())
        finally:
            sock.close()  # nothing left to close once detached
        try:
            answer_challenge(conn, self.authkey)
            deliver_challenge(conn, self.authkey)
        except BaseException:
            conn.close()
            raise
        return conn

    def submit(self, prompt_ids, settings, owner):
        return self._call("submit", prompt_ids, settings, owner)

    def poll(self, job, owner, since=0):
        return self._call("poll", job, owner, since)

    def update(self, job, owner, settings):
        return self._call("update", job, owner, settings)

    def cancel(self, job, owner):
        return self._call("cancel", job, owner)

    def stats(self):
        return self._call("stats")


def _exit(socket: str) -> None:
    try:
        os.unlink(socket)
    except OSError:
        pass
    os._exit(0)


def _exit_with_parent(parent: int, socket: str) -> None:
    """The engine belongs to the server that started it: if that one is gone (even killed), so is the engine."""
    while os.getppid() == parent:
        time.sleep(2)
    _exit(socket)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The generation engine of one machine, on a unix socket. "
                                                 "Its key comes from INSIDE_GPT2_ENGINE_KEY (hex).")
    parser.add_argument("--socket", required=True, help="unix socket path, in a folder only this account can use")
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES),
                        help="weights: float32, bfloat16 or int8 (weight-only, see quantize.py)")
    parser.add_argument("--slots", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    key = bytes.fromhex(os.environ["INSIDE_GPT2_ENGINE_KEY"])
    from .runtime import load_gpt2
    runtime = load_gpt2(args.model, device=args.device, dtype=args.dtype)
    engine = Engine(runtime, slots=args.slots, max_seconds=args.max_seconds)
    print(f"Engine ready on {args.socket}: {runtime!r}, {engine.slots} slots", flush=True)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(), args.socket), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: _exit(args.socket))
    serve(JobBoard(engine, max_new_tokens=args.max_new_tokens), args.socket, key)


if __name__ == "__main__":
    main()
