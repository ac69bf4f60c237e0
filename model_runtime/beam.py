"""Beam search, batched over the beams with the KV cache, and recorded step by step so a view can draw the tree.

The scoring follows transformers' `_beam_search` (generation/utils.py, v5) operation for operation, so that
`model.beam_search(...)` returns the same hypotheses as `generate(num_beams=n, do_sample=False, ...)`:

- each step takes the 2n best continuations over all beams by cumulative log-prob (2n so that n survive even if
  n of them end the text), the best n that did not end become the next beams;
- a continuation that ends (end-of-text, or the last allowed token) and ranks among the n best of the 2n becomes a
  finished hypothesis with score  sum(log-probs) / (new tokens) ** length_penalty; the n best hypotheses are kept;
- early_stopping True: stop once n hypotheses are finished. False: stop when the best running beam, scored at
  its current length, cannot beat the worst finished hypothesis (HF's heuristic). "never": the same test at
  max_new_tokens when length_penalty > 0 (the canonical beam search).
- num_beams=1 is greedy search, as `generate` does for one beam (equivalently: one beam with early_stopping True).

The arithmetic (float32 sums, the -1e9 used to push entries out of a top-k) is HF's, so ties break the same way.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

MAX_BEAMS = 8
NEG = -1.0e9  # HF's "very large negative" score


@dataclass
class Candidate:
    """One of the 2n continuations a step looked at."""
    parent: int          # index of the beam it extends, in the step's `beams`
    token_id: int
    text: str            # display form of the token
    logprob: float       # log p(token | beam), after the no-repeat-n-gram ban
    score: float         # the beam's cumulative log-prob + logprob
    ended: bool          # end-of-text, or the last token allowed
    status: str          # "kept" (a beam of the next step), "finished" (entered the hypotheses), "pruned"
    next_beam: int | None = None  # its index among the next step's beams when kept


@dataclass
class Hypothesis:
    token_ids: list[int]  # the new tokens only (the end-of-text token included when it ended the text)
    score: float          # logprob / len(token_ids) ** length_penalty: what hypotheses are ranked by
    logprob: float        # sum of the tokens' log-probs
    ended_by: str         # "eos", "length" (max_new_tokens or the context), "time_limit" (unfinished)
    text: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BeamStep:
    index: int                    # 0: the first new token
    beams: list[dict]             # the running beams going in: {"token_ids": new tokens so far, "score": cum. log-prob}
    candidates: list[Candidate]   # the 2n best continuations, best first (parent, token, scores, status)
    hypotheses: list[Hypothesis]  # the finished hypotheses after this step, best first
    seconds: float                # forward pass + scoring

    def to_dict(self) -> dict:
        return {"index": self.index, "beams": self.beams, "candidates": [asdict(c) for c in self.candidates],
                "hypotheses": [h.to_dict() for h in self.hypotheses], "seconds": self.seconds}


@dataclass
class BeamResult:
    prompt_ids: list[int]
    settings: dict
    hypotheses: list[Hypothesis] = field(default_factory=list)  # best first
    steps: list[BeamStep] = field(default_factory=list)
    stop_reason: str = ""
    seconds: float = 0.0

    @property
    def best(self) -> Hypothesis:
        return self.hypotheses[0]

    def to_dict(self) -> dict:
        return {"prompt_ids": self.prompt_ids, "settings": self.settings, "stop_reason": self.stop_reason,
                "seconds": self.seconds, "hypotheses": [h.to_dict() for h in self.hypotheses],
                "steps": [s.to_dict() for s in self.steps]}


def banned_tokens(ids: Sequence[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram of `ids` (HF's NoRepeatNGramLogitsProcessor, prompt included)."""
    if n <= 0 or len(ids) + 1 < n:
        return []
    prefix = tuple(ids[len(ids) - n + 1:])
    return [ids[i + n - 1] for i in range(len(ids) - n + 1) if tuple(ids[i:i + n - 1]) == prefix]


def check_settings(num_beams, max_new_tokens, length_penalty, no_repeat_ngram_size, early_stopping) -> None:
    def whole(name, value, low, high=None):
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            span = f"from {low} to {high}" if high else f"{low} or more"
            raise ValueError(f"{name} must be a whole number {span}; got {value!r}")
    whole("num_beams", num_beams, 1, MAX_BEAMS)
    whole("max_new_tokens", max_new_tokens, 1)
    whole("no_repeat_ngram_size", no_repeat_ngram_size, 0)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be a finite number; got {length_penalty!r}")
    if not (early_stopping is True or early_stopping is False or early_stopping == "never"):
        raise ValueError(f"early_stopping must be True, False or 'never'; got {early_stopping!r}")


@torch.inference_mode()
def beam_search(runtime, prompt_or_ids, num_beams: int = 4, max_new_tokens: int = 20, length_penalty: float = 1.0,
                no_repeat_ngram_size: int = 0, early_stopping: bool | str = False,
                max_seconds: float | None = None, stop_at_eos: bool = True) -> BeamResult:
    """`stop_at_eos` False: end-of-text is a token like any other (transformers' eos_token_id=None)."""
    check_settings(num_beams, max_new_tokens, length_penalty, no_repeat_ngram_size, early_stopping)
    prompt = runtime.encode(prompt_or_ids)
    room = runtime.config.n_ctx - len(prompt)
    if room <= 0:
        raise ValueError(f"The prompt fills the context of {runtime.config.n_ctx} tokens: no room for new ones.")
    max_new_tokens = min(max_new_tokens, room)
    n, tok, model = num_beams, runtime.tokenizer, runtime.model
    eos = tok.eot_id if stop_at_eos else None
    if n == 1:
        early_stopping = True  # greedy search, as generate() does for one beam
    lp = float(length_penalty)
    result = BeamResult(prompt, dict(num_beams=n, max_new_tokens=max_new_tokens, length_penalty=lp,
                                     no_repeat_ngram_size=no_repeat_ngram_size, early_stopping=early_stopping,
                                     stop_at_eos=bool(stop_at_eos)))

    beams: list[list[int]] = [[]]           # new tokens of each running beam (one beam before the first step)
    beam_scores = torch.zeros(1)            # their cumulative log-probs, float32
    slots: list[Hypothesis | None] = [None] * n   # finished hypotheses (HF's `sequences`), best first
    slot_scores = torch.full((n,), NEG)
    slot_done = torch.zeros(n, dtype=torch.bool)
    improvable = True                       # HF's is_early_stop_heuristic_unsatisfied
    top_n = torch.arange(2 * n) < n         # only the n best of the 2n continuations may finish
    fed, cache = torch.tensor([prompt], device=runtime.device), None
    started = time.perf_counter()

    for step in range(max_new_tokens):
        t0 = time.perf_counter()
        with runtime.lock:
            logits, cache = model(fed, cache)
        logprobs = F.log_softmax(logits[:, -1].to("cpu", torch.float32), dim=-1)  # [beams, V]
        V = logprobs.size(-1)
        for b, ids in enumerate(beams):
            ban = banned_tokens(prompt + ids, no_repeat_ngram_size)
            if ban:
                logprobs[b, ban] = float("-inf")
        scores = (logprobs + beam_scores[:, None]).view(-1)
        cand_scores, flat = torch.topk(scores, k=min(2 * n, scores.numel()))
        parents, tokens = (flat // V).tolist(), (flat % V).tolist()
        length = step + 1  # new tokens in each candidate
        ended = torch.tensor([t == eos or length >= max_new_tokens for t in tokens])

        # The next beams: the n best continuations that did not end.
        running = torch.topk(cand_scores + ended.to(torch.float32) * NEG, k=n)[1].tolist()
        # Finished hypotheses: merge the ended ones (length-normalised) into the n kept so far.
        normed = cand_scores / (length ** lp)
        normed += float(bool(slot_done.all()) and early_stopping is True) * NEG  # full and stopping early
        normed += float(not improvable) * NEG
        normed += (~(ended & top_n[:len(tokens)])) * NEG
        merged = torch.topk(torch.cat([slot_scores, normed]), k=n)[1].tolist()
        hyps = [Hypothesis(beams[parents[c]] + [tokens[c]], float(normed[c]), float(cand_scores[c]),
                           "eos" if tokens[c] == eos else "length") for c in range(len(tokens))]
        pool = slots + hyps
        slots = [pool[i] for i in merged]
        slot_scores = torch.cat([slot_scores, normed])[merged]
        slot_done = torch.cat([slot_done, ended & top_n[:len(tokens)]])[merged]

        candidates = [Candidate(parents[c], tokens[c], tok.token(tokens[c]).text,
                                float(logprobs[parents[c], tokens[c]]), float(cand_scores[c]), bool(ended[c]),
                                "pruned") for c in range(len(tokens))]
        for i, done in zip(merged, slot_done.tolist()):
            if i >= n and done:
                candidates[i - n].status = "finished"
        if not bool(ended.all()):
            for b, c in enumerate(running):
                candidates[c].status, candidates[c].next_beam = "kept", b
        finished = [h for h, done in zip(slots, slot_done.tolist()) if done]
        result.steps.append(BeamStep(step, [{"token_ids": ids, "score": float(s)} for ids, s in
                                            zip(beams, beam_scores.tolist())], candidates,
                                     [_with_text(h, tok) for h in finished], time.perf_counter() - t0))

        beam_scores = (cand_scores + ended.to(torch.float32) * NEG)[running]
        beams = [beams[parents[c]] + [tokens[c]] for c in running]
        # Could a running beam still beat the worst finished hypothesis? (HF's heuristic, sticky once false.)
        hypothetical = max_new_tokens if (early_stopping == "never" and lp > 0) else length
        best_running = beam_scores[:1] / (hypothetical ** lp)
        worst = torch.where(slot_done, slot_scores.min(), torch.tensor(NEG))
        improvable = improvable and bool((best_running > worst).any())
        if bool(ended.all()):
            result.stop_reason = "max_new_tokens" if length >= max_new_tokens else "eos"
        elif not improvable:
            result.stop_reason = "no_improvement"
        elif bool(slot_done.all()) and early_stopping is True:
            result.stop_reason = "early_stopping"
        elif max_seconds is not None and time.perf_counter() - started > max_seconds:
            result.stop_reason = "time_limit"
        if result.stop_reason:
            break
        # Each new beam continues the cache of the beam it came from.
        index = torch.tensor([parents[c] for c in running], device=runtime.device)
        cache = [(k[index], v[index]) for k, v in cache]
        fed = torch.tensor([[ids[-1]] for ids in beams], device=runtime.device)

    hypotheses = [h for h, done in zip(slots, slot_done.tolist()) if done]
    if result.stop_reason == "time_limit":  # fill up with the unfinished beams, scored at their length
        hypotheses += [Hypothesis(ids, float(s) / len(ids) ** lp, float(s), "time_limit")
                       for ids, s in zip(beams, beam_scores.tolist())][:n - len(hypotheses)]
        hypotheses.sort(key=lambda h: -h.score)
    result.hypotheses = [_with_text(h, tok) for h in hypotheses]
    result.seconds = time.perf_counter() - started
    return result


def _with_text(h: Hypothesis, tokenizer) -> Hypothesis:
    return Hypothesis(list(h.token_ids), h.score, h.logprob, h.ended_by, tokenizer.decode(h.token_ids))
