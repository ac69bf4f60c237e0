"""From logits to the next token, as pure functions over the full vocabulary, in Hugging Face's order:

    penalties -> temperature -> top-k -> top-p -> softmax -> draw

Temperature 0 means greedy (argmax, first index on ties). top_k 0 (or >= vocabulary) is off; top_p 1.0 is off;
at least one token is always kept. `sampling_record` keeps every intermediate so the page can show each stage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

MAX_TEMPERATURE = 100.0
MAX_PENALTY = 10.0


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0   # 0 = greedy
    top_k: int = 0             # 0 or >= vocabulary = off
    top_p: float = 1.0         # 1.0 = off
    repetition_penalty: float = 1.0   # HF: seen tokens' positive logits divided by it, negative ones multiplied
    presence_penalty: float = 0.0     # OpenAI: subtracted once from every seen token's logit
    frequency_penalty: float = 0.0    # OpenAI: subtracted once per occurrence
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def checked(cls, **values) -> "SamplingParams":
        """Parameters from a web page, validated: raises ValueError with a message for people.

        Accepted: temperature 0..100; top_k an integer >= 0 (huge values mean off); top_p in (0, 1];
        repetition_penalty in (0, 10]; presence/frequency penalties in [-10, 10]; seed None or 0..2**32-1.
        Numbers may arrive as strings of digits (form fields); booleans are refused."""
        def number(name, low, high, integer=False, low_open=False):
            value = values.get(name, getattr(cls, name))
            if isinstance(value, bool) or value is None and name != "seed":
                raise ValueError(f"{name} must be a number, not {value!r}")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, not {str(value)[:40]!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
            if integer and value != int(value):
                raise ValueError(f"{name} must be a whole number")
            if value < low or (low_open and value == low) or value > high:
                bound = "above" if low_open else "at least"
                raise ValueError(f"{name} must be {bound} {low:g} and at most {high:g}; got {value:g}")
            return int(value) if integer else value

        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown sampling setting(s): {', '.join(sorted(unknown))}")
        seed = values.get("seed")
        return cls(
            temperature=number("temperature", 0, MAX_TEMPERATURE),
            top_k=number("top_k", 0, math.inf, integer=True),
            top_p=number("top_p", 0, 1, low_open=True),
            repetition_penalty=number("repetition_penalty", 0, MAX_PENALTY, low_open=True),
            presence_penalty=number("presence_penalty", -MAX_PENALTY, MAX_PENALTY),
            frequency_penalty=number("frequency_penalty", -MAX_PENALTY, MAX_PENALTY),
            seed=None if seed is None else number("seed", 0, 2**32 - 1, integer=True),
        )


def apply_penalties(logits: torch.Tensor, previous_ids=None, repetition_penalty: float = 1.0,
                    presence_penalty: float = 0.0, frequency_penalty: float = 0.0) -> torch.Tensor:
    if previous_ids is None or len(previous_ids) == 0 or (
            repetition_penalty == 1.0 and presence_penalty == 0.0 and frequency_penalty == 0.0):
        return logits
    ids = torch.as_tensor(list(previous_ids), device=logits.device, dtype=torch.long)
    counts = torch.bincount(ids, minlength=logits.numel())[: logits.numel()].to(logits.dtype)
    seen = counts > 0
    out = logits
    if repetition_penalty != 1.0:
        penalised = torch.where(out < 0, out * repetition_penalty, out / repetition_penalty)
        out = torch.where(seen, penalised, out)
    return out - presence_penalty * seen.to(out.dtype) - frequency_penalty * counts


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    if not temperature > 0:
        raise ValueError("temperature must be above 0 here; 0 (greedy) takes the argmax instead")
    return logits / temperature


def top_k_mask(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """Tokens at or above the k-th highest score (ties at the k-th value are all kept, as in HF)."""
    if top_k <= 0 or top_k >= scores.numel():
        return torch.ones_like(scores, dtype=torch.bool)
    return scores >= torch.topk(scores, top_k).values[-1]


def top_p_mask(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """The smallest set of highest-probability tokens whose mass reaches top_p (HF's arithmetic: ascending
    sort, drop where the cumulative mass is <= 1 - top_p, always keep the most likely token)."""
    if top_p >= 1.0:
        return scores > float("-inf")
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= (1 - top_p)
    drop_sorted[-1:] = False
    drop = drop_sorted.scatter(0, order, drop_sorted)
    return ~drop & (scores > float("-inf"))


@dataclass
class SamplingRecord:
    """Every stage of turning one position's logits into a token (all tensors [vocab], float32)."""
    logits: torch.Tensor
    penalized: torch.Tensor
    scaled: torch.Tensor          # after temperature (= penalized when greedy)
    probs_before: torch.Tensor    # softmax(scaled), before any filtering
    kept_top_k: torch.Tensor      # bool
    kept_top_p: torch.Tensor      # bool, within kept_top_k
    top_p_cumulative_mass: float  # mass of the kept set, under the distribution top-p looked at
    probs: torch.Tensor           # the final, renormalised distribution
    params: SamplingParams
    token: int | None = None
    rank: int | None = None       # of the drawn token by logit (0 = highest)

    @property
    def entropy_bits(self) -> float:
        p = self.probs[self.probs > 0]
        return float(-(p * p.log2()).sum())

    def rank_of(self, token: int) -> int:
        """Rank by logit: how many tokens have a strictly higher logit (0 = the top token)."""
        return int((self.logits > self.logits[token]).sum())

    def row(self, token: int) -> dict:
        """One token's value at every stage."""
        return {"id": int(token), "logit": float(self.logits[token]), "scaled": float(self.scaled[token]),
                "prob_before": float(self.probs_before[token]), "kept_top_k": bool(self.kept_top_k[token]),
                "kept_top_p": bool(self.kept_top_p[token]), "prob": float(self.probs[token]),
                "rank": self.rank_of(token)}

    def top(self, n: int) -> list[dict]:
        """The n most likely tokens before filtering (ties broken by id), each as `row`."""
        order = torch.sort(self.probs_before, descending=True, stable=True).indices[:n]
        return [self.row(i) for i in order.tolist()]

    def with_token(self, token: int) -> "SamplingRecord":
        """The record with `token` as the drawn one (e.g. the token a generation actually drew)."""
        return replace(self, token=int(token), rank=self.rank_of(token))


def sampling_record(logits: torch.Tensor, params: SamplingParams, previous_ids=None) -> SamplingRecord:
    logits = logits.float()
    penalized = apply_penalties(logits, previous_ids, params.repetition_penalty, params.presence_penalty,
                                params.frequency_penalty)
    if params.greedy:
        scaled = penalized
        probs_before = penalized.softmax(-1)
        best = int(penalized.argmax())
        kept = torch.zeros_like(penalized, dtype=torch.bool)
        kept[best] = True
        probs = kept.float()
        return SamplingRecord(logits, penalized, scaled, probs_before, kept, kept.clone(),
                              float(probs_before[best]), probs, params)
    scaled = apply_temperature(penalized, params.temperature)
    probs_before = scaled.softmax(-1)
    kept_k = top_k_mask(scaled, params.top_k)
    filtered = scaled.masked_fill(~kept_k, float("-inf"))
    kept_p = top_p_mask(filtered, params.top_p) & kept_k
    final = filtered.masked_fill(~kept_p, float("-inf"))
    probs = final.softmax(-1)
    mass = float(filtered.softmax(-1)[kept_p].sum())
    return SamplingRecord(logits, penalized, scaled, probs_before, kept_k, kept_p, mass, probs, params)


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, *,
                     previous_ids=None, repetition_penalty: float = 1.0, presence_penalty: float = 0.0,
                     frequency_penalty: float = 0.0) -> torch.Tensor:
    """The distribution the next token is drawn from, over the full vocabulary."""
    params = SamplingParams(temperature, top_k, top_p, repetition_penalty, presence_penalty, frequency_penalty)
    return sampling_record(logits, params, previous_ids).probs


def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator


def draw(record: SamplingRecord, generator: torch.Generator | None = None) -> SamplingRecord:
    """The record with its token drawn (`torch.multinomial`, reproducible with a seeded generator)."""
    if record.params.greedy:
        token = int(record.probs.argmax())
    else:
        token = int(torch.multinomial(record.probs, 1, generator=generator))
    return record.with_token(token)
