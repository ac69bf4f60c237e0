"""Where the views get their data: the model (loaded once per process, after a server forks) and a bounded
cache of traces keyed by token ids. Views never run the model themselves; they ask for `trace_for(ids)`."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from dash.exceptions import PreventUpdate
from flask import has_app_context
from flask_caching import Cache
from plotly.basedatatypes import BaseFigure

from components import i18n
from components.i18n import _, number
from components.shared_state import cache_config  # noqa: F401 (the views cache's settings, for app.py)
from model_runtime import GPT2Runtime, Trace, load_gpt2
from model_runtime.engine import Engine
from model_runtime.engine_service import EngineConnection, EngineUnavailable, JobBoard
from model_runtime.tokenizer import without_lone_surrogates
from model_runtime.trace import hook_point_names

# The app keeps everything except raw and scaled scores: both are q.k per head (one matmul for the head on
# screen), and at 1,024 tokens each would add 600 MB to a cached trace.
SKIPPED_CAPTURES = ("attn.hook_raw_scores", "attn.hook_attn_scores")

MAX_PROMPT_CHARS = 200_000  # beyond this the text is refused before tokenizing


class ModelHolder:
    """Loads the model in a background thread so the page can show a loading state meanwhile."""

    def __init__(self):
        self.settings = {"source": "gpt2", "device": "auto", "dtype": "float32"}
        self._runtime: GPT2Runtime | None = None
        self._error: str | None = None
        self._ready = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    def configure(self, **settings) -> None:
        self.settings.update(settings)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="load-gpt2", daemon=True).start()

    def _load(self) -> None:
        try:
            print(f"Loading {self.settings['source']} on {self.settings['device']}...", flush=True)
            runtime = load_gpt2(**self.settings)
            if self._runtime is None:  # a model handed over with set() meanwhile wins
                self._runtime = runtime
            print(f"Ready: {runtime!r}. {runtime.message}", flush=True)
        except Exception as error:  # shown on the page; the server keeps answering
            self._error = str(error)
            print(f"The model could not be loaded: {error}", flush=True)
        finally:
            self._ready.set()

    def set(self, runtime: GPT2Runtime) -> None:
        """Use an already loaded model (tests, notebooks)."""
        self._runtime, self._error, self._started = runtime, None, True
        self._ready.set()
        traces.clear()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def error(self) -> str | None:
        """Why the model could not be loaded, for the page (in the reader's language), or None."""
        return None if self._error is None else _("The model could not be loaded: {error}").format(error=self._error)

    def get(self, timeout: float = 300) -> GPT2Runtime:
        self.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(_("The model is still loading; try again in a moment."))
        if self._runtime is None:
            raise RuntimeError(self.error or _("The model is not loaded."))
        return self._runtime


class TraceCache:
    """Recently used traces, bounded by count, total bytes (a 1,024-token trace is about 1.3 GB) and age.

    A new prompt fires several view callbacks at once; the first computes the trace and the others wait for
    it, so each prompt costs one forward pass."""

    def __init__(self, max_bytes: int = 2 * 1024**3, max_items: int = 32, max_age_s: float = 3600,
                 on_new: Callable[[tuple[int, ...], Trace], None] | None = None):
        """`on_new(ids, trace)` runs once for each trace computed here."""
        self.max_bytes, self.max_items, self.max_age_s, self.on_new = max_bytes, max_items, max_age_s, on_new
        self._items: OrderedDict[tuple[int, ...], tuple[float, Trace]] = OrderedDict()
        self._pending: dict[tuple[int, ...], threading.Lock] = {}
        self._lock = threading.Lock()

    def _cached(self, key) -> Trace | None:
        item = self._items.get(key)
        if item is None or time.monotonic() - item[0] > self.max_age_s:
            self._items.pop(key, None)
            return None
        self._items.move_to_end(key)
        return item[1]

    def get(self, ids: Sequence[int]) -> Trace:
        key = tuple(ids)
        with self._lock:
            trace = self._cached(key)
            if trace is not None:
                return trace
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:  # one computation per key; later callers find it cached
            with self._lock:
                trace = self._cached(key)
            if trace is None:
                runtime = model.get()
                capture = [n for n in hook_point_names(runtime.model) if not n.endswith(SKIPPED_CAPTURES)]
                trace = runtime.trace(list(key), capture=capture)
                with self._lock:
                    self._items[key] = (time.monotonic(), trace)
                    self._evict()
                if self.on_new is not None:
                    self.on_new(key, trace)
        with self._lock:
            self._pending.pop(key, None)
        return trace

    def peek(self, ids: Sequence[int]) -> Trace | None:
        """The trace if it is cached here; never computes one."""
        with self._lock:
            return self._cached(tuple(ids))

    def _evict(self) -> None:
        while len(self._items) > 1 and (len(self._items) > self.max_items or
                                        sum(t.nbytes for _, t in self._items.values()) > self.max_bytes):
            self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class EngineHolder:
    """The generation engine this process talks to, chosen by INSIDE_GPT2_ENGINE:

    - unset: an engine inside this process, over this process's model (`python app.py`, tests);
    - `unix:PATH`: the machine's engine process (gunicorn: gunicorn.conf.py starts it and sets this and its key,
      INSIDE_GPT2_ENGINE_KEY), so every web worker's generations batch together;
    - `ray:ADDRESS`: a Ray Serve deployment of engines (see model_runtime/ray_engine.py).

    Each has the JobBoard interface (submit / poll / update / cancel / stats)."""

    MAX_NEW_TOKENS = 100
    MAX_SECONDS = 30.0   # a generation never holds its slot longer than this

    def __init__(self):
        self._board = None
        self._lock = threading.Lock()

    def get(self):
        address = os.environ.get("INSIDE_GPT2_ENGINE", "")
        with self._lock:
            if address.startswith("unix:"):
                if self._board is None:
                    self._board = EngineConnection(address[5:], bytes.fromhex(os.environ["INSIDE_GPT2_ENGINE_KEY"]))
                return self._board
            if address.startswith("ray:"):
                if self._board is None:
                    from model_runtime.ray_engine import RayJobBoard
                    self._board = RayJobBoard(address[4:], redis_url=os.environ.get("CACHE_REDIS_URL"))
                return self._board
            if address:
                raise EngineUnavailable(f"INSIDE_GPT2_ENGINE must be unset, unix:PATH or ray:ADDRESS, not {address[:40]!r}")
        runtime = model.get()
        with self._lock:
            # A new engine for a model set by a test, or when the last one has stopped (closed, or its scheduler
            # died): a page must never submit to an engine that will not run it.
            if self._board is None or self._board.engine.runtime is not runtime or not self._board.engine.alive:
                if self._board is not None:
                    self._board.engine.close()
                engine = Engine(runtime, max_seconds=self.MAX_SECONDS)
                self._board = JobBoard(engine, max_new_tokens=self.MAX_NEW_TOKENS)
            return self._board

    def close(self) -> None:
        """Stop this process's own engine, if it runs one (its runs end as cancelled); the next `get` starts a
        new one."""
        with self._lock:
            board, self._board = self._board, None
        if isinstance(board, JobBoard):
            board.engine.close()


model = ModelHolder()
engine = EngineHolder()
traces = TraceCache(max_bytes=int(os.environ.get("INSIDE_GPT2_TRACE_CACHE_MB", "512")) * 2**20, max_items=16,
                    on_new=lambda ids, trace: share_next_logits(ids, trace))  # defined below
# Finished view results (figures) shared by every worker: a class opening the teacher's link asks for the same
# prompt and settings again and again. Redis when CACHE_REDIS_URL is set, else files in a private folder.
views_cache = Cache()


def memoized(callback):
    """Cache a view callback's result by its arguments, the loaded model (its weights' origin) and the reader's
    language (results hold interface text), so any worker answers a repeated request from the cache. Only for
    callbacks that are pure functions of their inputs (not ones that read which input triggered them)."""
    @functools.wraps(callback)
    def wrapper(*args):
        if not model.ready:  # no view before the model: waiting here would hold one of the browser's six
            raise PreventUpdate  # connections, and the loading banner's polls would queue behind them
        return _memoized_call(callback.__module__ + "." + callback.__qualname__, model_key(),
                              i18n.current_language(), args)

    _callbacks[callback.__module__ + "." + callback.__qualname__] = callback
    return wrapper


_callbacks: dict = {}


@views_cache.memoize()
def _memoized_call(name, _model, _language, args):
    return as_plain_data(_callbacks[name](*args))


def as_plain_data(result):
    """Figures as the plain dicts Dash would send anyway. A cache hit must be fast, and unpickling a
    go.Figure re-validates every property (174 ms for the attention view's six figures, 0.5 ms as dicts)."""
    if isinstance(result, BaseFigure):
        return result.to_plotly_json()
    if isinstance(result, (tuple, list)):
        return type(result)(as_plain_data(r) for r in result)
    return result


def _code_version() -> str:
    """Cached results are only valid for the code (and the interface text) that made them."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1()
    for path in sorted([*root.glob("components/**/*.py"), *root.glob("model_runtime/*.py"),
                        *root.glob("locale/*/LC_MESSAGES/messages.po")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


CODE_VERSION = _code_version()


def model_key() -> str:
    return f"{CODE_VERSION}|{model.get().fingerprint}"


def trace_for(ids: Sequence[int]) -> Trace:
    return traces.get(ids)


def next_logits(ids: Sequence[int]) -> torch.Tensor:
    """The logits for the token after `ids` (all the Next-token view needs). Under gunicorn a slider move may
    reach a worker that has not traced this prompt: it reads the logits the tracing worker shared (200 KB)
    instead of running the model again."""
    trace = traces.peek(ids)
    if trace is None and has_app_context():
        shared = views_cache.get(_logits_key(ids))
        if shared is not None:
            return torch.from_numpy(shared)
    return (traces.get(ids) if trace is None else trace).logits[-1]


def share_next_logits(ids: Sequence[int], trace: Trace) -> None:
    if has_app_context():  # the shared cache belongs to a running app (not to a notebook using this module)
        views_cache.set(_logits_key(ids), trace.logits[-1].numpy().copy())


def _logits_key(ids: Sequence[int]) -> str:
    digest = hashlib.sha1(json.dumps(list(map(int, ids))).encode()).hexdigest()
    return f"next-logits|{model_key()}|{digest}"


def prompt_to_sequence(text: str) -> tuple[dict | None, str | None]:
    """The `sequence` store for a prompt ({"ids", "n_prompt", "label", "prompt"}), and a message for the page
    (None when all is well).

    Long prompts keep their last n_ctx tokens (the model can only read that many) and say so."""
    if not isinstance(text, str):
        return None, _("The prompt must be text.")
    if len(text) > MAX_PROMPT_CHARS:
        return None, _("The prompt is {n_text} characters long; paste at most {max_prompt_chars}.").format(
            n_text=number(len(text)), max_prompt_chars=number(MAX_PROMPT_CHARS))
    if not text.strip():
        return None, _("The prompt is empty: type some text, or pick an example.")
    text = without_lone_surrogates(text)  # JSON (and so the page) cannot carry lone surrogates back
    runtime = model.get()
    ids = runtime.tokenizer.encode(text)
    n_ctx = runtime.config.n_ctx
    message = None
    if len(ids) > n_ctx:
        message = (_("The prompt is {n_ids} tokens; {name} reads at most {n_ctx}, so only the last {n_ctx} tokens "
                     "are used.").format(n_ids=number(len(ids)), name=runtime.config.name, n_ctx=number(n_ctx)))
        ids = ids[-n_ctx:]
    return {"ids": ids, "n_prompt": len(ids), "label": "prompt", "prompt": text}, message
