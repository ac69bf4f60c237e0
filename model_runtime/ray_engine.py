"""The generation engine on a Ray Serve cluster, for classes larger than one machine can serve.

Each Serve replica loads the model and owns one `Engine` with its scheduler thread, so the generations that
Ray routes to a replica batch their decode steps together. A generation is one streaming request: the replica
yields compact step records (`engine_service.step_summary`: token, top candidates, settings, timings, batch
size; never full-vocabulary tensors) as its engine decodes them. When the caller goes away (closed HTTP
connection, cancelled handle call), Serve cancels the request at its next `await` and the replica cancels the
engine job, which leaves the batch at the next step boundary.

    ray start --head ...
    python -m model_runtime.ray_engine --model gpt2 --slots 16 --replicas 2 --host 0.0.0.0 --port 8000

Two ways in:
- HTTP, through Serve's proxy: `POST /inside-gpt2/generate` with {"prompt": token ids or text, "settings":
  {...}, "job": id} answers newline-delimited JSON events (below); `GET /inside-gpt2/stats` one replica's stats.
- A deployment handle, from a driver on the cluster (a notebook):
  `serve.get_app_handle("inside-gpt2").options(stream=True).generate.remote({"prompt": "The cat"})`.

Events, in order: {"event": "accepted", "queue_position": n, ...}; then {"event": "step", "step": summary} per
token and {"event": "waiting", "queue_position": n} when no step came for a second (so a connection silent
for long is a dead one); then {"event": "end", "stop_reason", "stop_message", "timings", "error"}. A request
the engine refuses gets one {"event": "error", "kind": "invalid" | "full", "message": ...} instead.

`RayJobBoard` is the web tier's side (INSIDE_GPT2_ENGINE=ray:http://HOST:8000): `engine_service.JobBoard`'s
methods, for gunicorn workers on any number of machines. Ray sends each request to any replica, so nothing
about a running job can live in one web worker or be sent to "its" replica by a later call. Redis (the views
cache's, CACHE_REDIS_URL) carries it instead:

- submit(): the web worker that takes the request opens the generation's stream and, in a background thread,
  appends each step record to the job's Redis list as it arrives;
- poll() from any worker reads that list from the index it has, and the job's state;
- update() writes the job's live settings to a Redis hash with a version number; the replica reads it after
  every step (and every second while the job waits) and hands a new version to `job.update`;
- cancel() sets the job's stop flag; the replica checks it at the same moments and cancels the job, and the
  streaming thread closes the stream when it sees it: either way the slot frees within a step.

Job ids are 144 random bits; a job records a hash of its page's id, and an unknown, expired or other page's
job is refused with one message. Every key has a TTL (an hour while running, 10 minutes after the end, as
JobBoard keeps runs). Redis holds JSON only, never pickles, and the replica checks live settings like any
others: whoever can write to that Redis can change a run's settings, not run code. Redis is used only as
`components.shared_state.check_redis_url` allows (a private unix socket, or a password).

Only `build_app` and the command line import Ray: the web tier needs redis-py and requests, not Ray.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator

from .engine_service import EngineError, EngineUnavailable, checked_settings, step_summary
from .generate import STOP_REASONS
from .runtime import DTYPES

APP_NAME = "inside-gpt2"
ROUTE_PREFIX = "/inside-gpt2"
KEY_PREFIX = "inside-gpt2:run:"
OWNER_PREFIX = "inside-gpt2:page:"
REPLICAS_KEY = "inside-gpt2:engine-replicas"
RUN_TTL_S = 3600          # keys of a running job (refreshed as it streams)
KEEP_S = 600              # ... and of an ended one, as JobBoard keeps runs
ALIVE_TTL_S = 15          # the streaming thread refreshes its job's "alive" key; gone = that web worker died
HEARTBEAT_S = 1.0         # the replica sends an event at least this often
STATS_EVERY_S = 2.0       # each replica puts its engine's stats in Redis this often
STATS_FRESH_S = 10.0      # ... and stats() counts replicas whose last report is this recent
ACCEPT_TIMEOUT_S = 10.0   # submit() waits this long for a replica to accept (normally a few milliseconds)
READ_TIMEOUT_S = 30.0     # a stream silent this long is dead
REDIS_TIMEOUT_S = 3.0     # no Redis call waits longer (a hung Redis must not hang a page or the engine)
MAX_BODY_BYTES = 2_000_000
MAX_NEW_TOKENS = 100      # as components.state.EngineHolder
MAX_SECONDS = 30.0
TOKEN_ENV = "INSIDE_GPT2_ENGINE_TOKEN"
NO_SUCH_RUN = "no such run for this page (it may have ended more than 10 minutes ago)"

log = logging.getLogger("inside_gpt2.ray_engine")


def run_keys(job: str) -> dict[str, str]:
    """The Redis keys of one job: meta (hash: page, state, queue place, end), steps (list of JSON step
    records), live (hash of JSON settings, and "version"), stop (flag), alive (set by the streaming thread)."""
    base = KEY_PREFIX + job
    return {name: f"{base}:{name}" for name in ("meta", "steps", "live", "stop", "alive")}


def _checked_url(url: str) -> str:
    from components.shared_state import check_redis_url
    return check_redis_url(url)


def _redis(url: str):
    """A redis-py client for a Redis the app may trust, with timeouts."""
    import redis
    return redis.Redis.from_url(_checked_url(url), socket_timeout=REDIS_TIMEOUT_S,
                                socket_connect_timeout=REDIS_TIMEOUT_S)


def _stop_message(reason: str | None) -> str | None:
    return None if reason is None else STOP_REASONS.get(reason, reason)


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


# ----------------------------------------------------------------------------------------------- the replica


class EngineReplica:
    """One Serve replica: one model, one `Engine` and its scheduler thread (`build_app` deploys it).

    model: a hub id, folder or .safetensors file, loaded here, inside the replica. redis_url: the web tier's
    Redis, for live settings, stop flags and stats (without it streams work, and RayJobBoard.update refuses).
    token: if set, HTTP requests must carry `Authorization: Bearer <token>`. max_new_tokens, max_seconds: caps
    on every run, as the in-process engine has them."""

    def __init__(self, model: str = "gpt2", slots: int = 16, max_cached_tokens: int | None = None,
                 prefill_chunk: int = 128, device: str = "auto", dtype: str = "float32",
                 redis_url: str | None = None, token: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS,
                 max_seconds: float | None = MAX_SECONDS, threads: int | None = None):
        import torch

        from .engine import Engine
        from .runtime import load_gpt2
        if threads:
            torch.set_num_threads(threads)
        self.runtime = load_gpt2(model, device=device, dtype=dtype)
        self.engine = Engine(self.runtime, slots=slots, max_cached_tokens=max_cached_tokens,
                             prefill_chunk=prefill_chunk, max_seconds=max_seconds)
        self.max_new_tokens = max_new_tokens
        self.token = token or None
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.redis_url = _checked_url(redis_url) if redis_url else None
        self._aredis = None   # redis.asyncio client, made on the replica's event loop at first use
        self._closing = threading.Event()
        if self.redis_url:
            threading.Thread(target=self._publish_stats, name="engine-stats", daemon=True).start()

    # -- the streaming method (handles call it directly; HTTP comes through __call__)

    async def generate(self, request: dict) -> AsyncIterator[dict]:
        """The events of one generation (see the module's docstring). `request`: {"prompt": token ids or text,
        "settings": as `JobBoard.submit` takes them, "job": an id naming its Redis keys (optional)}."""
        from .engine import EngineFull
        try:
            job_id, prompt, kwargs = self._checked(request)
            job = self.engine.submit(prompt, **kwargs)
        except EngineFull as why:
            yield {"event": "error", "kind": "full", "message": f"The generation engine is full: {why}."}
            return
        except (ValueError, TypeError) as why:   # EngineError, PromptError, the engine's own checks
            yield {"event": "error", "kind": "invalid", "message": str(why)}
            return
        loop = asyncio.get_running_loop()
        records: asyncio.Queue = asyncio.Queue()
        # One thread per job waits for its steps (the engine's thread only queues them) and hands each one's
        # compact record to this event loop.
        threading.Thread(target=self._pump, args=(job, loop, records), daemon=True, name="engine-stream").start()
        live = {"version": None}
        getter = None
        try:
            yield {"event": "accepted", "queue_position": job.queue_position, "replica": self.name,
                   "live": bool(self.redis_url and job_id), "use_cache": job.use_cache,
                   "prompt_tokens": len(job.prompt_ids)}
            while True:
                # asyncio.wait, not wait_for: a timeout must never lose a record arriving at that moment
                getter = getter or asyncio.ensure_future(records.get())
                done, _ = await asyncio.wait({getter}, timeout=HEARTBEAT_S)
                if job_id and self.redis_url:
                    await self._apply_live(job, job_id, live)
                if not done:
                    yield {"event": "waiting", "queue_position": job.queue_position}
                    continue
                record, getter = getter.result(), None
                if record is None:
                    break
                yield {"event": "step", "step": record}
            yield {"event": "end", "stop_reason": job.stop_reason, "stop_message": _stop_message(job.stop_reason),
                   "timings": job.timings, "error": job.error}
        finally:
            # A closed connection or a cancelled handle call ends here (CancelledError / GeneratorExit at an
            # await above): the job leaves the batch at the next step boundary. A no-op once it has ended.
            job.cancel()
            if getter is not None:
                getter.cancel()

    def _checked(self, request) -> tuple[str | None, object, dict]:
        if not isinstance(request, dict):
            raise EngineError("a generation request is a JSON object")
        job_id = request.get("job")
        if job_id is not None and not _valid_id(job_id):
            raise EngineError("that is not a valid run id")
        prompt = request.get("prompt")
        if not (isinstance(prompt, str) or isinstance(prompt, list) and all(
                isinstance(i, int) and not isinstance(i, bool) for i in prompt)):
            raise EngineError("the prompt must be text or a list of token ids")
        return job_id, prompt, checked_settings(request.get("settings") or {}, self.max_new_tokens)

    def _pump(self, job, loop, records: asyncio.Queue) -> None:
        tokenizer = self.runtime.tokenizer
        try:
            for step in job:
                loop.call_soon_threadsafe(records.put_nowait, step_summary(step, tokenizer))
        except Exception:   # the event loop has closed (replica stopping) or a bug: end the job, never hang
            log.exception("the stream of a job failed")
            job.cancel()
        finally:
            try:
                loop.call_soon_threadsafe(records.put_nowait, None)
            except RuntimeError:
                pass

    async def _apply_live(self, job, job_id: str, live: dict) -> None:
        """The job's stop flag and live settings, in one Redis round trip; a settings version not applied yet
        goes to `job.update` (from the next step on). A failing Redis is logged, never fatal to the job."""
        if job.done:
            return
        keys = run_keys(job_id)
        try:
            if self._aredis is None:
                import redis.asyncio
                self._aredis = redis.asyncio.Redis.from_url(self.redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                                            socket_connect_timeout=REDIS_TIMEOUT_S)
            async with self._aredis.pipeline(transaction=False) as pipe:
                pipe.exists(keys["stop"])
                pipe.hgetall(keys["live"])
                stopped, values = await pipe.execute()
        except Exception as error:
            log.warning("run %s: Redis did not answer for its stop flag and settings: %s", job_id[:6], error)
            return
        if stopped:
            job.cancel()
            return
        version = values.get(b"version")
        if version is None or version == live["version"]:
            return
        live["version"] = version
        try:
            settings = {k.decode(): json.loads(v) for k, v in values.items() if k != b"version"}
            job.update(**checked_settings(settings, self.max_new_tokens, live=True))
        except (ValueError, TypeError) as why:   # the web tier checked them already; never fatal here
            log.warning("run %s: live settings refused: %s", job_id[:6], why)

    # -- stats

    def stats(self) -> dict:
        """This replica's engine stats, and the model it serves (which must be the web tier's)."""
        rt = self.runtime
        return {**self.engine.stats(), "replica": self.name, "model": rt.config.name, "fingerprint": rt.fingerprint,
                "pretrained": rt.pretrained, "model_message": rt.message}

    def _publish_stats(self) -> None:
        client = _redis(self.redis_url)
        while not self._closing.wait(STATS_EVERY_S):
            try:
                with client.pipeline(transaction=False) as pipe:
                    pipe.hset(REPLICAS_KEY, self.name, _json({**self.stats(), "time": time.time()}))
                    pipe.expire(REPLICAS_KEY, RUN_TTL_S)
                    pipe.execute()
            except Exception as error:   # Redis restarting: next time
                log.warning("could not publish the engine's stats: %s", error)
        try:
            client.hdel(REPLICAS_KEY, self.name)
        except Exception:
            pass

    # -- HTTP, through Serve's proxy

    async def __call__(self, request):
        from starlette.responses import JSONResponse, StreamingResponse
        if self.token and not hmac.compare_digest(request.headers.get("authorization", "").encode(),
                                                  f"Bearer {self.token}".encode()):
            return JSONResponse({"error": "this engine needs its token (Authorization: Bearer ...)"}, 401)
        path = request.url.path.rstrip("/")
        if path.endswith("/stats") and request.method == "GET":
            return JSONResponse(self.stats())
        if not (path.endswith("/generate") and request.method == "POST"):
            return JSONResponse({"error": "POST .../generate or GET .../stats"}, 404)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "request too large"}, 413)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, 400)

        async def lines():
            async for event in self.generate(payload):
                yield _json(event) + "\n"
        return StreamingResponse(lines(), media_type="application/x-ndjson")

    def __del__(self):
        # Serve calls this when it stops the replica: every job ends ("cancelled"), and so do their streams.
        self._closing.set()
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()


def build_app(model: str = "gpt2", *, slots: int = 16, replicas: int = 1, max_ongoing_requests: int | None = None,
              cpus_per_replica: float = 1, gpus_per_replica: float = 0, runtime_env: dict | None = None,
              **replica_options):
    """The Serve application: `serve.run(build_app(...), name=APP_NAME, route_prefix=ROUTE_PREFIX)`.
    `replica_options` go to EngineReplica.

    max_ongoing_requests: requests one replica takes at once (default 4 x slots). Serve's default, 5, would cap
    every batch at 5; above `slots`, requests wait in the engine's queue, which knows their places. When every
    replica has that many, up to `slots` more wait in Ray's queue, and beyond that the proxy answers 503."""
    from ray import serve
    ongoing = max_ongoing_requests or 4 * slots
    if ongoing < slots:
        raise ValueError(f"max_ongoing_requests ({ongoing}) must be at least slots ({slots}), or the batch "
                         f"never fills")
    actor_options: dict = {"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica}
    if runtime_env:
        actor_options["runtime_env"] = runtime_env
    deployment = serve.deployment(EngineReplica, name="EngineReplica", num_replicas=replicas,
                                  max_ongoing_requests=ongoing, max_queued_requests=slots,
                                  ray_actor_options=actor_options, graceful_shutdown_timeout_s=5)
    return deployment.bind(model=model, slots=slots, **replica_options)


# ------------------------------------------------------------------------------------------- the web tier


class RayJobBoard:
    """The web tier's client of an engine on Ray Serve, with `engine_service.JobBoard`'s methods and answers;
    any web worker on any machine can poll, update or cancel any page's run (see the module's docstring).

    address: Serve's HTTP proxy, `http://HOST:8000` (a bare `HOST:PORT` too). redis_url: the Redis that every
    web worker and replica shares (default CACHE_REDIS_URL). token: INSIDE_GPT2_ENGINE_TOKEN by default."""

    def __init__(self, address: str, redis_url: str | None = None, token: str | None = None,
                 max_new_tokens: int = MAX_NEW_TOKENS):
        address = address.removeprefix("ray:")
        if not address.startswith(("http://", "https://")):
            address = "http://" + address
        self.base = address.rstrip("/") + ROUTE_PREFIX
        self.redis_url = redis_url or os.environ.get("CACHE_REDIS_URL")
        if not self.redis_url:
            raise EngineUnavailable("INSIDE_GPT2_ENGINE=ray:... needs CACHE_REDIS_URL too: the web workers and the "
                                    "engine replicas share the running generations through Redis.")
        try:
            _checked_url(self.redis_url)
        except ValueError as why:
            raise EngineUnavailable(str(why)) from None
        self.token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.max_new_tokens = max_new_tokens
        self._pid, self._client = None, None

    @property
    def redis(self):
        """One client per process (made after gunicorn's fork); redis-py's connection pool is thread-safe."""
        if self._pid != os.getpid():
            self._client, self._pid = _redis(self.redis_url), os.getpid()
        return self._client

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(self, what, *args):
        """A Redis call; Redis down is the engine down, as far as a page can tell."""
        import redis
        try:
            return what(*args)
        except redis.RedisError as error:
            raise EngineUnavailable(f"The shared state (Redis) is not answering ({type(error).__name__}); the "
                                    f"rest of the page works. Try again in a moment.") from None

    # -- submit: the stream and its thread

    def submit(self, prompt_ids, settings, owner) -> dict:
        import requests
        if not _valid_id(owner):
            raise EngineError("that is not a valid page id")
        kwargs = checked_settings(settings, self.max_new_tokens)
        if not (isinstance(prompt_ids, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                                     for i in prompt_ids)):
            raise EngineError("the prompt must be a list of token ids")
        job = secrets.token_urlsafe(18)
        keys = run_keys(job)

        def start(pipe):
            pipe.hset(keys["meta"], mapping={"owner": _digest(owner), "state": "starting", "queue_position": 0,
                                             "use_cache": int(kwargs["use_cache"]),
                                             "prompt_tokens": len(prompt_ids)})
            pipe.expire(keys["meta"], RUN_TTL_S)
            pipe.set(keys["alive"], 1, ex=ALIVE_TTL_S)
            pipe.execute()
        self._call(lambda: start(self.redis.pipeline()))
        try:
            response = requests.post(f"{self.base}/generate", headers=self._headers(), stream=True,
                                     json={"job": job, "prompt": prompt_ids, "settings": kwargs},
                                     timeout=(5, READ_TIMEOUT_S))
        except requests.RequestException as error:
            self._forget(job)
            raise EngineUnavailable(f"The generation engine (Ray Serve at {self.base}) is not answering "
                                    f"({type(error).__name__}); the rest of the page works.") from None
        if response.status_code != 200:
            response.close()
            self._forget(job)
            if response.status_code == 503:
                raise EngineError("The generation engine is full: every slot and queue place is taken; try again "
                                  "in a moment.")
            raise EngineUnavailable(f"The generation engine answered HTTP {response.status_code}.")
        first: dict = {}
        got = threading.Event()
        threading.Thread(target=self._consume, args=(job, response, first, got), daemon=True,
                         name=f"ray-run-{job[:6]}").start()
        if not got.wait(ACCEPT_TIMEOUT_S):
            response.close()
            self._forget(job)
            raise EngineUnavailable(f"The generation engine did not take the run within {ACCEPT_TIMEOUT_S:g} s; "
                                    f"try again in a moment.")
        if first.get("event") != "accepted":
            self._forget(job)
            if first.get("event") == "error":
                raise EngineError(first.get("message") or "the engine refused this run")
            raise EngineUnavailable(first.get("message") or "The generation engine broke off.")
        # Only now, the new run accepted, does the page's previous one stop: a refused submit changes nothing.
        previous = self._call(lambda: self.redis.set(OWNER_PREFIX + _digest(owner), job, ex=RUN_TTL_S, get=True))
        if previous and _valid_id(previous.decode()):
            self._call(lambda: self.redis.set(run_keys(previous.decode())["stop"], 1, ex=KEEP_S))
        return {"job": job, "queue_position": int(first.get("queue_position") or 0)}

    def _consume(self, job: str, response, first: dict, got: threading.Event) -> None:
        """The job's stream, in a thread of the web worker that submitted it: each event goes to Redis, where
        every worker's poll() finds it."""
        keys = run_keys(job)
        ended = False
        try:
            for line in response.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                kind = event.get("event")
                if not got.is_set():
                    first.update(event)
                    if kind == "accepted":
                        self.redis.hset(keys["meta"], mapping={
                            "state": "running", "queue_position": event.get("queue_position") or 0,
                            "live": int(bool(event.get("live")))})
                    got.set()
                    if kind != "accepted":
                        ended = True
                        return
                    continue
                with self.redis.pipeline(transaction=False) as pipe:
                    if kind == "step":
                        pipe.rpush(keys["steps"], _json(event["step"]))
                        pipe.expire(keys["steps"], RUN_TTL_S)
                        pipe.hset(keys["meta"], "queue_position", 0)
                    elif kind == "waiting":
                        pipe.hset(keys["meta"], "queue_position", event.get("queue_position") or 0)
                    elif kind == "end":
                        pipe.hset(keys["meta"], mapping={
                            "state": "done", "stop_reason": event.get("stop_reason") or "error",
                            "stop_message": event.get("stop_message") or "",
                            "timings": _json(event.get("timings")), "error": event.get("error") or ""})
                        for key in keys.values():
                            pipe.expire(key, KEEP_S)
                    pipe.set(keys["alive"], 1, ex=ALIVE_TTL_S)
                    pipe.exists(keys["stop"])
                    stopped = pipe.execute()[-1]
                if kind == "end":
                    ended = True
                    return
                if stopped:   # cancel() from any worker: closing the stream cancels the job on its replica
                    self._end(job, "cancelled")
                    ended = True
                    return
        except Exception as error:   # connection lost, replica gone, Redis gone, garbage
            if not got.is_set():
                first.update({"event": "broken", "message": f"The generation engine broke off "
                                                            f"({type(error).__name__})."})
                got.set()
                ended = True
            else:
                log.warning("the stream of run %s broke: %s", job[:6], error)
        finally:
            response.close()
            if not ended:
                self._end(job, "error", "the generation engine stopped answering during the run")

    def _end(self, job: str, reason: str, error: str | None = None) -> None:
        keys = run_keys(job)
        try:
            with self.redis.pipeline() as pipe:
                pipe.hset(keys["meta"], mapping={"state": "done", "stop_reason": reason,
                                                 "stop_message": _stop_message(reason), "error": error or ""})
                for key in keys.values():
                    pipe.expire(key, KEEP_S)
                pipe.execute()
        except Exception:
            log.warning("could not record the end of run %s", job[:6])

    def _forget(self, job: str) -> None:
        try:
            self.redis.delete(*run_keys(job).values())
        except Exception:
            pass

    # -- the rest: Redis only, from any worker

    def _meta(self, job, owner) -> dict:
        if not (_valid_id(job) and _valid_id(owner)):
            raise EngineError(NO_SUCH_RUN)
        raw = self._call(self.redis.hgetall, run_keys(job)["meta"])
        meta = {k.decode(): v.decode() for k, v in raw.items()}
        if not meta or not hmac.compare_digest(meta.get("owner", ""), _digest(owner)):
            raise EngineError(NO_SUCH_RUN)
        return meta

    def poll(self, job, owner, since=0) -> dict:
        from .engine_service import _whole
        self._meta(job, owner)
        since = _whole(since, "since", 0, 10**6)
        keys = run_keys(job)

        def read(pipe):
            pipe.lrange(keys["steps"], since, -1)
            pipe.exists(keys["alive"])
            pipe.hgetall(keys["meta"])
            return pipe.execute()
        raw_steps, alive, raw = self._call(lambda: read(self.redis.pipeline(transaction=False)))
        meta = {k.decode(): v.decode() for k, v in raw.items()}
        done = meta.get("state") == "done"
        if not done and not alive:   # the web worker streaming it has died: nobody will finish it
            self._end(job, "error", "the web worker streaming this run stopped; start it again")
            return self.poll(job, owner, since)
        out = {"steps": [json.loads(s) for s in raw_steps], "done": done,
               "queue_position": int(meta.get("queue_position") or 0),
               "stop_reason": meta.get("stop_reason") or None if done else None,
               "use_cache": meta.get("use_cache", "1") == "1", "prompt_tokens": int(meta.get("prompt_tokens") or 0)}
        if done:
            out["stop_message"] = meta.get("stop_message") or _stop_message(out["stop_reason"])
            out["timings"] = json.loads(meta["timings"]) if meta.get("timings") else None
            if meta.get("error"):
                out["error"] = meta["error"]
        return out

    def update(self, job, owner, settings) -> dict:
        meta = self._meta(job, owner)
        kwargs = checked_settings(settings, self.max_new_tokens, live=True)
        if meta.get("state") == "done":
            raise EngineError("that run has already ended")
        if meta.get("live") == "0":
            raise EngineError("this engine cannot change a run's settings: start it with --redis-url")
        keys = run_keys(job)

        def write(pipe):
            pipe.hset(keys["live"], mapping={k: _json(v) for k, v in kwargs.items()})
            pipe.hincrby(keys["live"], "version", 1)
            pipe.expire(keys["live"], RUN_TTL_S)
            pipe.llen(keys["steps"])
            return pipe.execute()[-1]
        drawn = self._call(lambda: write(self.redis.pipeline()))
        return {"from_step": drawn}   # the first step drawn with them, give or take the one in flight

    def cancel(self, job, owner) -> dict:
        self._meta(job, owner)
        self._call(lambda: self.redis.set(run_keys(job)["stop"], 1, ex=RUN_TTL_S))
        return {"cancelled": True}

    def stats(self) -> dict:
        """Every replica's engine, added up (from the reports each puts in Redis every 2 s); if none has
        reported, one replica's own, over HTTP."""
        import requests
        now, reports = time.time(), []
        for raw in self._call(self.redis.hvals, REPLICAS_KEY):
            report = json.loads(raw)
            if now - report.get("time", 0) <= STATS_FRESH_S:
                reports.append(report)
        if not reports:
            try:
                answer = requests.get(f"{self.base}/stats", headers=self._headers(), timeout=5)
                answer.raise_for_status()
                reports = [answer.json()]
            except (requests.RequestException, ValueError) as error:
                raise EngineUnavailable(f"The generation engine (Ray Serve at {self.base}) is not answering "
                                        f"({type(error).__name__}); the rest of the page works.") from None
        return add_up(reports)


def _valid_id(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()


def _digest(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()


def add_up(reports: list[dict]) -> dict:
    """Engine stats of several replicas as one engine's (Engine.stats's keys), with `replicas` and each one's."""
    total = {key: sum(r.get(key, 0) for r in reports)
             for key in ("running", "queued", "slots", "cached_tokens", "max_cached_tokens", "decode_steps",
                         "decode_rows", "tokens", "prefill_chunks", "tokens_per_s")}
    steps = total["decode_steps"]
    return {**total, "mean_batch": total["decode_rows"] / steps if steps else 0.0,
            "prefilling": any(r.get("prefilling") for r in reports),
            "device": ", ".join(sorted({str(r.get("device", "?")) for r in reports})),
            "replicas": len(reports), "per_replica": reports}


# --------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m model_runtime.ray_engine",
        description="Deploy the generation engine on the running Ray cluster (`ray start --head` on one machine, "
                    "`ray start --address=HEAD:6379` on the others) and keep it up until Ctrl-C. HTTP requests "
                    f"must carry the token in {TOKEN_ENV} when it is set.")
    parser.add_argument("--model", default=os.environ.get("INSIDE_GPT2_MODEL", "gpt2"),
                        help="hub id, folder or .safetensors file, present on every machine (default gpt2)")
    parser.add_argument("--slots", type=int, default=16, help="sequences decoded together in a replica")
    parser.add_argument("--replicas", type=int, default=1, help="replicas, each with its own model and engine")
    parser.add_argument("--cpus-per-replica", type=float, default=1,
                        help="CPUs Ray reserves for a replica, and its torch threads (default 1)")
    parser.add_argument("--gpus-per-replica", type=float, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES),
                        help="weights: float32, bfloat16 or int8 (weight-only, see quantize.py)")
    parser.add_argument("--max-cached-tokens", type=int, default=None)
    parser.add_argument("--prefill-chunk", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="a run's time limit")
    parser.add_argument("--max-ongoing-requests", type=int, default=None, help="per replica (default 4 x slots)")
    parser.add_argument("--redis-url", default=os.environ.get("CACHE_REDIS_URL"),
                        help="the web tier's Redis, for live settings and Stop (default $CACHE_REDIS_URL)")
    parser.add_argument("--address", default="auto", help="the Ray cluster (default: the one running here)")
    parser.add_argument("--host", default="127.0.0.1", help="Serve's HTTP proxy address (0.0.0.0: every network)")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.redis_url:
        _checked_url(args.redis_url)   # refused here, with its message, rather than in every replica

    import ray
    from ray import serve
    package = os.path.dirname(os.path.abspath(__file__))
    # This code travels to every machine with the job (the packages must be installed there).
    ray.init(address=args.address,
             runtime_env={"py_modules": [package, os.path.join(os.path.dirname(package), "components")]})
    serve.start(http_options={"host": args.host, "port": args.port})
    app = build_app(args.model, slots=args.slots, replicas=args.replicas,
                    max_ongoing_requests=args.max_ongoing_requests, cpus_per_replica=args.cpus_per_replica,
                    gpus_per_replica=args.gpus_per_replica,
                    max_cached_tokens=args.max_cached_tokens, prefill_chunk=args.prefill_chunk,
                    device=args.device, dtype=args.dtype, redis_url=args.redis_url, token=os.environ.get(TOKEN_ENV),
                    max_new_tokens=args.max_new_tokens, max_seconds=args.max_seconds,
                    threads=max(1, int(args.cpus_per_replica)))
    serve.run(app, name=APP_NAME, route_prefix=ROUTE_PREFIX)
    print(f"The engine is up: {args.replicas} replica(s) x {args.slots} slots, on http://{args.host}:{args.port}"
          f"{ROUTE_PREFIX}. Web tier: INSIDE_GPT2_ENGINE=ray:http://<this machine>:{args.port}. Ctrl-C stops it.",
          flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.delete(APP_NAME)


if __name__ == "__main__":
    main()
