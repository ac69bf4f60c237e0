"""Speculative decoding: a small draft model proposes k tokens, the target checks all of them in one forward pass.

Speculative sampling (Leviathan et al. 2023; Chen et al. 2023), on the filtered distributions of sampling.py
(temperature, top-k, top-p; the same settings for both models): the draft samples d_1..d_k from q; the target's
one pass over them gives p_1..p_{k+1}. d_i is kept with probability min(1, p_i(d_i) / q_i(d_i)); at the first
rejection the target draws from normalize(max(0, p_i - q_i)) instead, and the round ends; when all k are kept the
target adds a bonus token from p_{k+1}. Every token therefore follows the target's distribution, and a round adds
between 1 and k + 1 tokens for one target pass. Temperature 0: p and q are one-hot, a draft token is kept exactly
when it is the target's argmax, and the output is the target's greedy output.

    for r in target.speculative_generate(draft, "The cat", k=4, max_new_tokens=40, temperature=0.8, seed=0):
        print(r.proposed, r.accepted, r.new_ids)
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import torch

from .sampling import SamplingParams, draw_token, make_generator, sampling_record

MAX_K = 8


@dataclass
class Round:
    index: int
    proposed: list[int]         # the draft's tokens
    draft_probs: list[float]    # q(d_i): how likely the draft found each
    target_probs: list[float]   # p(d_i): how likely the target finds each
    accepted: int               # how many of `proposed` were kept (a prefix)
    rejected: int | None        # the first rejected draft token, if any
    drawn: int                  # the target's own token: in place of the rejected one, or the bonus after all k
    new_ids: list[int]          # what the round added: proposed[:accepted] + [drawn] (cut at end-of-text)
    draft_seconds: float
    target_seconds: float

    @property
    def bonus(self) -> bool:
        """True when every proposal was kept and `drawn` is the target's extra token."""
        return self.rejected is None

    @property
    def accept_probs(self) -> list[float]:
        return [min(1.0, p / q) for p, q in zip(self.target_probs, self.draft_probs)]

    def to_dict(self) -> dict:
        return {**asdict(self), "bonus": self.bonus, "accept_probs": self.accept_probs}


class _Cached:
    """A model and the KV cache of the first `length` tokens of the sequence."""

    def __init__(self, runtime):
        self.runtime, self.cache, self.seconds = runtime, None, 0.0

    @property
    def length(self) -> int:
        return self.cache[0][0].size(2) if self.cache else 0

    def feed(self, ids: Sequence[int]) -> torch.Tensor:
        """Logits [len(ids), V] (CPU float32) for the positions after each of `ids`, which extend the cache."""
        t0 = time.perf_counter()
        with self.runtime.lock:
            logits, self.cache = self.runtime.model(torch.tensor([list(ids)], device=self.runtime.device),
                                                    self.cache)
        self.seconds += time.perf_counter() - t0
        return logits[0].to("cpu", torch.float32)

    def crop(self, length: int) -> None:
        """Forget every position from `length` on (rejected drafts)."""
        if self.cache and length < self.length:
            self.cache = [(k[:, :, :length], v[:, :, :length]) for k, v in self.cache]


class Speculation:
    """Iterator of `Round`s; afterwards `new_ids`, `stop_reason`, `acceptance_rate` and `timings`."""

    def __init__(self, target, draft, prompt_or_ids, k: int = 4, max_new_tokens: int = 20,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                 max_seconds: float | None = None):
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be a whole number from 1 to {MAX_K}; got {k!r}")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a whole number, 1 or more; got {max_new_tokens!r}")
        if draft.config.vocab_size != target.config.vocab_size:
            raise ValueError(f"the draft's vocabulary ({draft.config.vocab_size}) differs from the target's "
                             f"({target.config.vocab_size})")
        self.target, self.draft = target, draft
        self.prompt_ids = target.encode(prompt_or_ids)
        self.k, self.max_new_tokens, self.max_seconds = k, max_new_tokens, max_seconds
        self.params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        self.new_ids: list[int] = []
        self.rounds: list[Round] = []
        self.stop_reason: str | None = None
        self.seconds = 0.0

    @property
    def acceptance_rate(self) -> float | None:
        proposed = sum(len(r.proposed) for r in self.rounds)
        return sum(r.accepted for r in self.rounds) / proposed if proposed else None

    @property
    def timings(self) -> dict:
        draft = sum(r.draft_seconds for r in self.rounds)
        target = sum(r.target_seconds for r in self.rounds)
        return {"seconds": self.seconds, "draft_seconds": draft, "target_seconds": target,
                "tokens_per_s": len(self.new_ids) / self.seconds if self.seconds else None,
                "tokens_per_round": len(self.new_ids) / len(self.rounds) if self.rounds else None,
                "rounds": len(self.rounds), "new_tokens": len(self.new_ids), "acceptance_rate": self.acceptance_rate}

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return sampling_record(logits, self.params).probs

    def _stop_reason(self) -> str | None:
        if self.new_ids and self.new_ids[-1] == self.target.tokenizer.eot_id:
            return "eos"
        if len(self.new_ids) >= self.max_new_tokens:
            return "max_new_tokens"
        if len(self.prompt_ids) + len(self.new_ids) >= min(self.target.config.n_ctx, self.draft.config.n_ctx):
            return "context_full"
        return None

    @torch.inference_mode()
    def __iter__(self) -> Iterator[Round]:
        target, draft = _Cached(self.target), _Cached(self.draft)
        generator, greedy = make_generator(self.params.seed), self.params.greedy
        started = time.perf_counter()
        self.stop_reason = self._stop_reason()
        while self.stop_reason is None:
            if self.max_seconds is not None and self.rounds and time.perf_counter() - started > self.max_seconds:
                self.stop_reason = "time_limit"
                return
            seq = self.prompt_ids + self.new_ids
            room = min(self.target.config.n_ctx, self.draft.config.n_ctx) - len(seq)
            k = min(self.k, self.max_new_tokens - len(self.new_ids) - 1, room - 1)  # the round's tokens fit

            # Draft: k tokens one by one (the first pass also catches up on tokens it has not seen).
            draft.seconds = target.seconds = 0.0
            proposed, qs, pending = [], [], seq[draft.length:]
            for _ in range(k):
                q = self._probs(draft.feed(pending)[-1])
                token = draw_token(q, generator, greedy)
                proposed, pending = proposed + [token], [token]
                qs.append(q)
            # Target: one pass over the unseen tokens and all k proposals gives p_1 .. p_{k+1}.
            ps = [self._probs(row) for row in target.feed(seq[target.length:] + proposed)[-(k + 1):]]

            accepted, rejected = 0, None
            for i, token in enumerate(proposed):
                ratio = float(ps[i][token] / qs[i][token])
                u = 0.0 if greedy else float(torch.rand(1, generator=generator))
                if u < ratio:
                    accepted += 1
                    continue
                rejected = token
                residual = (ps[i] - qs[i]).clamp(min=0)
                drawn = draw_token(residual / residual.sum() if residual.sum() > 0 else ps[i], generator, greedy)
                break
            else:
                drawn = draw_token(ps[k], generator, greedy)  # the bonus token

            # Both caches keep the sequence up to the last kept proposal; `drawn` is fed next round.
            target.crop(len(seq) + accepted)
            draft.crop(len(seq) + accepted)
            new = proposed[:accepted] + [drawn]
            if self.target.tokenizer.eot_id in new:
                new = new[:new.index(self.target.tokenizer.eot_id) + 1]
            self.new_ids += new
            self.stop_reason = self._stop_reason()
            self.seconds = time.perf_counter() - started
            record = Round(len(self.rounds), proposed, [float(q[t]) for q, t in zip(qs, proposed)],
                           [float(p[t]) for p, t in zip(ps, proposed)], accepted, rejected, drawn, new,
                           draft.seconds, target.seconds)
            self.rounds.append(record)
            yield record

    def run(self) -> "Speculation":
        for _ in self:
            pass
        return self


def measure_speedup(target, draft, prompt_or_ids, k: int = 4, max_new_tokens: int = 32, temperature: float = 0.0,
                    top_k: int = 0, top_p: float = 1.0, seed: int = 0, repeats: int = 1) -> dict:
    """Plain cached decoding of the target vs speculative decoding, same prompt and settings, best of `repeats`.

    Speed-up = speculative tokens/s over plain tokens/s (each over the whole run, prefill included). It needs a
    draft much cheaper than the target and a verify pass of k + 1 tokens that costs about one decode step: true on
    a GPU (spare parallel compute), often not on a small CPU, where k + 1 positions cost more than one."""
    settings = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    plain_s, spec_s, plain, spec = [], [], None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        plain = target.generate(prompt_or_ids, **settings).run()
        plain_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        spec = Speculation(target, draft, prompt_or_ids, k=k, **settings).run()
        spec_s.append(time.perf_counter() - t0)
    plain_tps, spec_tps = len(plain.new_ids) / min(plain_s), len(spec.new_ids) / min(spec_s)
    return {"k": k, "plain_tokens_per_s": plain_tps, "speculative_tokens_per_s": spec_tps,
            "speedup": spec_tps / plain_tps, "acceptance_rate": spec.acceptance_rate,
            "tokens_per_round": spec.timings["tokens_per_round"],
            "draft_share": spec.timings["draft_seconds"] / max(spec.seconds, 1e-9),
            "same_tokens": plain.new_ids == spec.new_ids, "new_tokens": len(spec.new_ids)}
