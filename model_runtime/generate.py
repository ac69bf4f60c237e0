"""The generation loop: prefill the prompt once, then one cached decode step per new token.

`Generation` is an iterator of `Step` records, so a front end can show tokens as they come and stop early
(`cancel()`); after the loop it holds the stop reason and the run's timings. Step n's logits are the
distribution token n was drawn from: step 0's come from the prefill, step n's from feeding token n - 1.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from .messages import N_
from .model import LayerCache
from .sampling import SamplingParams, SamplingRecord, draw, make_generator, sampling_record
from .tokenizer import Token
from .trace import CaptureSpec, Recorder

# Why a run stopped, for people (the app shows them in the reader's language).
STOP_REASONS = {
    "max_new_tokens": N_("reached the number of tokens asked for"),
    "eos": N_("the model ended the text (<|endoftext|>)"),
    "stop_sequence": N_("a stop sequence appeared"),
    "context_full": N_("the context window is full"),
    "time_limit": N_("the time limit ran out"),
    "cancelled": N_("stopped by the user"),
    "error": N_("the generation engine failed (the server log says why)"),
}


def cache_bytes(cache: list[LayerCache] | None) -> int:
    return sum(t.numel() * t.element_size() for layer in cache or [] for t in layer)


@dataclass
class Step:
    index: int                  # 0 for the first new token
    token_id: int
    token: Token
    position: int               # where the token sits in the whole sequence
    logits: torch.Tensor        # [vocab] on the CPU, float32: what the token was drawn from
    sampling: SamplingRecord    # every stage of the sampling pipeline, and the draw
    seconds: float              # forward pass (prefill for step 0) + sampling
    cache_len: int              # positions held in the KV cache after this step's forward (0 without cache)
    cache_bytes: int
    captures: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # this step's forward, batch dropped
    stop_reason: str | None = None  # set on the last step
    batch_size: int = 1             # sequences in the forward pass that produced it (the engine batches them)

    @property
    def text(self) -> str:
        return self.token.text


class Run:
    """What a generation run is, wherever it runs: its prompt, settings, tokens so far, stop rules and timings.
    `Generation` runs one alone; `engine.Job` runs one inside the engine's batch.

    Settings: temperature / top_k / top_p / penalties / seed as in `sampling.SamplingParams`; `stop` is a string
    or list of strings; `max_seconds` bounds the whole run."""

    def __init__(self, runtime, prompt_or_ids: str | Sequence[int], max_new_tokens: int = 20,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                 stop: str | Sequence[str] | None = None, repetition_penalty: float = 1.0,
                 presence_penalty: float = 0.0, frequency_penalty: float = 0.0, max_seconds: float | None = None):
        self.runtime = runtime
        self.prompt_ids = runtime.encode(prompt_or_ids)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a whole number, 0 or more; got {max_new_tokens!r}")
        self.max_new_tokens = max_new_tokens
        self.params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p,
                                     repetition_penalty=repetition_penalty, presence_penalty=presence_penalty,
                                     frequency_penalty=frequency_penalty, seed=seed)
        self.max_seconds = max_seconds
        self.stop_strings = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
        self.new_ids: list[int] = []
        self.stop_reason: str | None = None
        self.step_seconds: list[float] = []
        self.kv_cache_bytes = 0
        self.use_cache = True
        self._cancelled = False

    def cancel(self) -> None:
        """Ask the run to stop after the step in progress (safe from another thread)."""
        self._cancelled = True

    @property
    def ids(self) -> list[int]:
        return self.prompt_ids + self.new_ids

    @property
    def text(self) -> str:
        return self.runtime.tokenizer.decode(self.new_ids)

    @property
    def timings(self) -> dict:
        """Time to first token (prefill + first draw), time per later token, tokens per second, cache size."""
        decode = self.step_seconds[1:]
        total = sum(self.step_seconds)
        return {
            "ttft_s": self.step_seconds[0] if self.step_seconds else None,
            "per_token_s": sum(decode) / len(decode) if decode else None,
            "tokens_per_s": len(self.step_seconds) / total if total else None,
            "decode_tokens_per_s": len(decode) / sum(decode) if decode and sum(decode) else None,
            "new_tokens": len(self.new_ids),
            "kv_cache_bytes": self.kv_cache_bytes,
            "use_cache": self.use_cache,
        }

    def _stop_reason(self) -> str | None:
        """Checked after each new token."""
        if self.new_ids[-1] == self.runtime.tokenizer.eot_id:
            return "eos"
        if self.stop_strings and any(s in self.text for s in self.stop_strings):
            return "stop_sequence"
        if len(self.new_ids) >= self.max_new_tokens:
            return "max_new_tokens"
        if len(self.ids) >= self.runtime.config.n_ctx:
            return "context_full"
        return None

    def _cannot_start(self) -> str | None:
        """Why no token can be made at all, before any work."""
        if self.max_new_tokens == 0:
            return "max_new_tokens"
        if len(self.prompt_ids) >= self.runtime.config.n_ctx:
            return "context_full"
        return None

    def _interrupted(self, started: float) -> str | None:
        """Checked before each forward pass, so a cancel or time limit never starts new work."""
        if self._cancelled:
            return "cancelled"
        # The first token is always made, so a tight limit still shows something.
        if self.new_ids and self.max_seconds is not None and time.perf_counter() - started > self.max_seconds:
            return "time_limit"
        return None

    def _record(self, logits: torch.Tensor, generator: torch.Generator) -> SamplingRecord:
        """This step's sampling record, its token drawn with the run's current settings."""
        return draw(sampling_record(logits, self.params, previous_ids=self.ids), generator)

    def _step(self, record: SamplingRecord, logits: torch.Tensor, seconds: float, cache_len: int,
              captures: dict | None = None, batch_size: int = 1) -> Step:
        """Append the drawn token and make its Step record (its stop reason set when it is the last)."""
        self.step_seconds.append(seconds)
        self.new_ids.append(record.token)
        self.stop_reason = self._stop_reason()
        return Step(index=len(self.new_ids) - 1, token_id=record.token,
                    token=self.runtime.tokenizer.token(record.token), position=len(self.ids) - 1,
                    logits=logits, sampling=record, seconds=seconds, cache_len=cache_len,
                    cache_bytes=self.kv_cache_bytes, captures=captures or {}, stop_reason=self.stop_reason,
                    batch_size=batch_size)


class Generation(Run):
    """`for step in model.generate("Hello", max_new_tokens=20, temperature=0.8, seed=1): ...`

    One run alone (the engine's batch is tested against it). Besides `Run`'s settings: `use_cache=False`
    recomputes the whole sequence every step (to compare timings); `capture` selects hook points to keep per
    step (False: none)."""

    def __init__(self, runtime, prompt_or_ids: str | Sequence[int], use_cache: bool = True,
                 capture: CaptureSpec = False, **settings):
        super().__init__(runtime, prompt_or_ids, **settings)
        self.use_cache, self.capture = use_cache, capture

    def _forward(self, cache: list[LayerCache] | None) -> tuple[torch.Tensor, list[LayerCache], dict]:
        """Logits for the next token, the new cache and this forward's captures."""
        model = self.runtime.model
        if self.use_cache and cache is not None:
            fed = self.ids[-1:]   # only the newest token; the cache holds the rest
        else:
            fed, cache = self.ids, None
        idx = torch.tensor([fed], device=self.runtime.device)
        with self.runtime.lock, Recorder(model, self.capture) as recorder:
            logits, new_cache = model(idx, cache)
        captures = {name: t[0].to("cpu", torch.float32) for name, t in recorder.captures.items()}
        return logits[0, -1].to("cpu", torch.float32), (new_cache if self.use_cache else None), captures

    @torch.inference_mode()
    def __iter__(self) -> Iterator[Step]:
        self.stop_reason = self._cannot_start()
        if self.stop_reason:
            return
        generator = make_generator(self.params.seed)
        cache, started = None, time.perf_counter()
        while self.stop_reason is None:
            self.stop_reason = self._interrupted(started)
            if self.stop_reason:
                return
            t0 = time.perf_counter()
            logits, cache, captures = self._forward(cache)
            record = self._record(logits, generator)
            self.kv_cache_bytes = cache_bytes(cache)
            yield self._step(record, logits, time.perf_counter() - t0,
                             cache[0][0].size(2) if cache else 0, captures)

    def run(self) -> "Generation":
        """Run to the end without looking at the steps."""
        for _ in self:
            pass
        return self
