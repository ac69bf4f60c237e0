"""From logits to the next token, as pure functions over the full vocabulary, in Hugging Face's order:

    penalties -> temperature -> top-k -> top-p -> softmax -> draw

Every function takes one position's logits, a 1-D tensor [V] (V = 50,257 for GPT-2, but any V works), computes
in float32 on the tensor's own device and returns its results there. Nothing is modified in place; an output
may be the input itself when a stage is off (so do not modify what you get back).

The arithmetic and the edge cases follow transformers' logits processors (generation/logits_process.py):
RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, with their
defaults (filter value -inf, min_tokens_to_keep=1). So:

- temperature 0 means greedy: argmax of the penalised logits, first index on ties (torch.argmax); top-k and
  top-p are ignored then, as `generate(do_sample=False)` ignores its warpers.
- top_k 0 or >= V is off (HF does not add the warper for 0). Ties at the k-th value are all kept.
- top_p 1.0 is off (HF does not add the warper). Otherwise HF's arithmetic: sort ascending, cumulative softmax
  of the already scaled and top-k filtered scores, drop where cumulative <= 1 - top_p, keep at least the most
  likely token.
- tokens whose logit is -inf are never kept, and at least one token always is.

Typical use:

    params = SamplingParams.checked(temperature="0.7", top_p="0.9", seed="42")   # values from a web page
    record = sampling_record(logits, params, previous_ids=ids)                # every stage, nothing drawn
    record = record.with_draw(make_generator(params.seed))                   # or draw(record, generator)
    record.token, record.rank, record.top(10)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

# Ranges `SamplingParams.checked` accepts from a web page (see its docstring for why these).
MIN_TEMPERATURE = 1e-3         # besides 0 (greedy)
MAX_TEMPERATURE = 100.0
MIN_REPETITION_PENALTY = 0.01
MAX_REPETITION_PENALTY = 10.0
MAX_PENALTY = 2.0              # presence / frequency penalties, both signs (OpenAI's range)
MAX_SEED = 2**32 - 1

NEG_INF = float("-inf")


# ----------------------------------------------------------------------------------------------------------
# Settings

@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0   # 0 = greedy (argmax, first index on ties)
    top_k: int = 0             # 0 or >= V = off
    top_p: float = 1.0         # 1.0 = off
    repetition_penalty: float = 1.0   # HF: seen tokens' positive logits divided by it, negative ones multiplied
    presence_penalty: float = 0.0     # OpenAI: subtracted once from every seen token's logit
    frequency_penalty: float = 0.0    # OpenAI: subtracted once per occurrence of the token
    seed: int | None = None           # None = a fresh nondeterministic seed per generator

    def __post_init__(self):
        # Only what would make the pipeline itself produce nonsense (NaN probabilities, an empty kept set).
        # The narrower ranges meant for people are in `checked`.
        problems = []
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            problems.append(f"temperature must be a finite number >= 0, not {self.temperature!r}")
        if not self.top_k >= 0:
            problems.append(f"top_k must be >= 0, not {self.top_k!r}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], not {self.top_p!r}")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0):
            problems.append(f"repetition_penalty must be a finite number > 0, not {self.repetition_penalty!r}")
        for name in ("presence_penalty", "frequency_penalty"):
            if not math.isfinite(getattr(self, name)):
                problems.append(f"{name} must be a finite number, not {getattr(self, name)!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def checked(cls, **values) -> "SamplingParams":
        """SamplingParams from values sent by a web page; raises ValueError with a message meant for people.

        Accepted (anything missing takes the default):
          temperature         0 (greedy), or from 0.001 to 100. Below 0.001 sampling is indistinguishable from
                              greedy for GPT-2's logits, and tiny divisors overflow float32; above 100 every
                              distribution is already flat.
          top_k               a whole number >= 0; 0 is off, and so is anything >= the vocabulary (10**9 is fine).
          top_p               above 0 and at most 1; 1 is off.
          repetition_penalty  0.01 to 10 (HF's; 1 is off, above 1 discourages repeats, below 1 encourages them).
          presence_penalty,
          frequency_penalty   -2 to 2 (OpenAI's documented range; 0 is off).
          seed                None, or a whole number from 0 to 2**32 - 1.
        Numbers may arrive as strings ("0.7", " 40 ", "1e3"), as form fields and query strings do; whole numbers
        may be written as floats ("40.0"). Booleans, NaN, infinities and unknown names are refused."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown sampling setting(s): {', '.join(sorted(unknown))}")

        def number(name, low, high, integer=False, low_open=False):
            value = values.get(name, getattr(cls, name))
            if isinstance(value, bool) or value is None:
                raise ValueError(f"{name} must be a number, not {value!r}")
            if isinstance(value, int):  # keep big integers exact (float() would round them)
                number_ = value
            else:
                try:
                    number_ = float(value)
                except (TypeError, ValueError, OverflowError):
                    raise ValueError(f"{name} must be a number, not {str(value)[:40]!r}") from None
                if not math.isfinite(number_):
                    raise ValueError(f"{name} must be a finite number, not {str(value)[:40]!r}")
                if integer:
                    if number_ != int(number_):
                        raise ValueError(f"{name} must be a whole number, not {_show(number_)}")
                    number_ = int(number_)
            if number_ < low or (low_open and number_ == low) or number_ > high:
                lower = f"above {_show(low)}" if low_open else f"at least {_show(low)}"
                upper = "" if high == math.inf else f" and at most {_show(high)}"
                raise ValueError(f"{name} must be {lower}{upper}; got {_show(number_)}")
            return number_ if integer else float(number_)

        temperature = number("temperature", 0, MAX_TEMPERATURE)
        if 0 < temperature < MIN_TEMPERATURE:
            raise ValueError(f"temperature must be 0 (greedy) or at least {_show(MIN_TEMPERATURE)}; "
                             f"got {_show(temperature)}")
        seed = values.get("seed")
        return cls(
            temperature=temperature,
            top_k=number("top_k", 0, math.inf, integer=True),
            top_p=number("top_p", 0, 1, low_open=True),
            repetition_penalty=number("repetition_penalty", MIN_REPETITION_PENALTY, MAX_REPETITION_PENALTY),
            presence_penalty=number("presence_penalty", -MAX_PENALTY, MAX_PENALTY),
            frequency_penalty=number("frequency_penalty", -MAX_PENALTY, MAX_PENALTY),
            seed=None if seed is None else number("seed", 0, MAX_SEED, integer=True),
        )


def _show(number) -> str:
    """A number for a message: whole numbers in full (a seed bound reads 4294967295, not 4.29497e+09) unless
    absurdly long, others short."""
    if isinstance(number, int):
        text = str(number)
        return text if len(text) <= 20 else text[:20] + "..."
    return f"{number:g}"


# ----------------------------------------------------------------------------------------------------------
# The stages, each a pure function of a [V] tensor

def apply_penalties(logits: torch.Tensor, previous_ids=None, repetition_penalty: float = 1.0,
                    presence_penalty: float = 0.0, frequency_penalty: float = 0.0) -> torch.Tensor:
    """Logits with the tokens in `previous_ids` (any sequence of ids, repeats counted) penalised.

    Repetition penalty first, exactly HF's RepetitionPenaltyLogitsProcessor (once per distinct token: negative
    logits multiplied by it, the others divided), then OpenAI's additive penalties:
    logit - presence_penalty * [count > 0] - frequency_penalty * count."""
    logits = logits.float()
    if previous_ids is None or len(previous_ids) == 0 or (
            repetition_penalty == 1.0 and presence_penalty == 0.0 and frequency_penalty == 0.0):
        return logits
    vocab = logits.numel()
    ids = torch.as_tensor(previous_ids, dtype=torch.long).reshape(-1).to(logits.device)
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab:
        raise ValueError(f"previous_ids must be token ids from 0 to {vocab - 1}; got {low if low < 0 else high}")
    counts = torch.bincount(ids, minlength=vocab).float()  # one pass, no Python loop over the ids
    seen = counts > 0
    out = logits
    if repetition_penalty != 1.0:
        out = torch.where(seen, torch.where(out < 0, out * repetition_penalty, out / repetition_penalty), out)
    if presence_penalty != 0.0:
        out = out - presence_penalty * seen.float()
    if frequency_penalty != 0.0:
        out = out - frequency_penalty * counts
    return out


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / temperature, as HF's TemperatureLogitsWarper (temperature > 0; 0 is greedy, handled apart)."""
    if not temperature > 0:
        raise ValueError("temperature must be above 0 here; 0 (greedy) takes the argmax instead")
    return logits.float() / temperature


def top_k_mask(scores: torch.Tensor, top_k: int) -> torch.Tensor:
    """True for the tokens HF's TopKLogitsWarper keeps: scores >= the k-th highest, so ties at the k-th value
    are all kept. top_k 0 or >= V is off. -inf scores are never kept."""
    scores = scores.float()
    finite = scores > NEG_INF
    top_k = int(top_k)
    if top_k <= 0 or top_k >= scores.numel():
        return finite
    return (scores >= torch.topk(scores, top_k).values[-1]) & finite


def top_p_mask(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """True for the tokens HF's TopPLogitsWarper keeps: the most likely tokens whose mass reaches top_p.

    `scores` are already temperature-scaled and top-k filtered (-inf outside). HF's arithmetic, to the bit:
    sort ascending, cumulative softmax, drop where cumulative <= 1 - top_p, never drop the most likely token.
    top_p >= 1 is off. -inf scores are never kept."""
    scores = scores.float()
    finite = scores > NEG_INF
    top_p = float(top_p)
    if top_p >= 1.0:
        return finite
    if scores.device.type == "cpu":
        kept = _top_p_mask_by_threshold(scores, top_p)
        if kept is not None:
            return kept & finite
    sorted_scores, order = torch.sort(scores, descending=False)
    drop_sorted = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
    drop_sorted[-1:] = False  # min_tokens_to_keep=1
    drop = drop_sorted.scatter(0, order, drop_sorted)
    return ~drop & finite


def _top_p_mask_by_threshold(scores: torch.Tensor, top_p: float) -> torch.Tensor | None:
    """top_p_mask without torch.sort, which takes ~3 ms on 50k floats on a small CPU (numpy's value-only sort
    takes ~0.1 ms). The cumulative mass only depends on the sorted *values*, so it is bit-identical to HF's.
    The dropped tokens are a prefix of the ascending order (the cumsum of non-negative numbers never
    decreases), so they are exactly the tokens below the first kept value... unless tokens tied at that value
    straddle the cut: then which of them HF keeps depends on torch.sort's tie order, and we return None so
    the caller takes HF's own path."""
    sorted_scores = torch.from_numpy(np.sort(scores.detach().numpy()))
    drop_sorted = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
    n_drop = min(int(drop_sorted.sum()), scores.numel() - 1)  # keep at least one
    threshold = sorted_scores[n_drop]
    if int((scores < threshold).sum()) != n_drop:
        return None
    return scores >= threshold


# ----------------------------------------------------------------------------------------------------------
# The whole pipeline, with every intermediate kept for display

@dataclass
class SamplingRecord:
    """Every stage of turning one position's logits into a token (tensors [V] on the logits' device)."""
    logits: torch.Tensor          # raw model logits (float32)
    penalized: torch.Tensor       # after repetition / presence / frequency penalties
    scaled: torch.Tensor          # after temperature (= penalized when greedy)
    probs_before: torch.Tensor    # softmax(scaled), before any filtering
    kept_top_k: torch.Tensor      # bool; greedy: only the argmax
    kept_top_p: torch.Tensor      # bool, within kept_top_k; the tokens that can be drawn
    top_p_cumulative_mass: float  # mass of the kept set under what top-p looked at (softmax of the top-k set)
    probs: torch.Tensor           # the final, renormalised distribution (sums to 1)
    params: SamplingParams
    token: int | None = None      # the drawn token, None until drawn
    rank: int | None = None       # of the drawn token by raw logit (0 = highest; ties share a rank)

    @property
    def entropy_bits(self) -> float:
        """Entropy of the final distribution, in bits."""
        p = self.probs[self.probs > 0]
        return float(-(p * p.log2()).sum())

    def rank_of(self, token: int) -> int:
        """Rank by raw logit: how many tokens have a strictly higher logit (0 = the top token)."""
        return int((self.logits > self.logits[token]).sum())

    def row(self, token: int) -> dict:
        """One token's value at every stage."""
        return self._rows(torch.tensor([int(token)], device=self.logits.device))[0]

    def top(self, n: int) -> list[dict]:
        """The n most likely tokens before filtering, as `row`s: by probs_before, descending. Equal
        probabilities are ordered by scaled logit, then by id: at low temperatures many probabilities underflow
        to exactly 0, and those tokens should still come in logit order, not in vocabulary order."""
        ids = _first_n((self.probs_before, self.scaled), min(max(int(n), 0), self.logits.numel()))
        return self._rows(ids)

    def _rows(self, ids: torch.Tensor) -> list[dict]:
        # Gather each column once instead of a dozen tiny tensor reads per row.
        chosen = self.logits[ids]
        if ids.numel() <= 64:  # the handful of rows a page shows: n x V comparisons beat sorting V logits
            ranks = (self.logits[None, :] > chosen[:, None]).sum(dim=1)
        else:  # rank = how many logits are strictly higher = V - (how many are <= it)
            ranks = self.logits.numel() - torch.searchsorted(torch.sort(self.logits).values, chosen, right=True)
        columns = zip(ids.tolist(), chosen.tolist(), self.scaled[ids].tolist(),
                      self.probs_before[ids].tolist(), self.kept_top_k[ids].tolist(), self.kept_top_p[ids].tolist(),
                      self.probs[ids].tolist(), ranks.tolist())
        keys = ("id", "logit", "scaled", "prob_before", "kept_top_k", "kept_top_p", "prob", "rank")
        return [dict(zip(keys, values)) for values in columns]

    def with_token(self, token: int) -> "SamplingRecord":
        """The record with `token` as the drawn one (e.g. the token a generation actually drew)."""
        return replace(self, token=int(token), rank=self.rank_of(token))

    def with_draw(self, generator: torch.Generator | None = None) -> "SamplingRecord":
        """The record with a token drawn from `probs` (greedy: the argmax, and the generator is not touched)."""
        return self.with_token(draw_token(self.probs, generator, greedy=self.params.greedy))


def _first_n(keys: tuple[torch.Tensor, ...], n: int, ids: torch.Tensor | None = None) -> torch.Tensor:
    """The first n of `ids` (default: all) in the order keys[0] descending, then keys[1] descending, ...,
    then id ascending. Without sorting the whole vocabulary (a stable sort of 50k floats takes ~10 ms here):
    everything strictly above the n-th largest key is few (< n) and sorted fully; the ties at the n-th value,
    however many, are ordered by the next key the same way."""
    if ids is None:
        ids = torch.arange(keys[0].numel(), device=keys[0].device)
    n = min(n, ids.numel())
    if n == 0 or not keys:
        return ids[:n]  # ids ascend, which is the last tie-break
    key = keys[0][ids]
    cut = torch.topk(key, n).values[-1]
    above = ids[key > cut]
    for k in reversed(keys):  # stable sorts from the least significant key; ids already ascend
        above = above[torch.sort(k[above], descending=True, stable=True).indices]
    tied = _first_n(keys[1:], n - above.numel(), ids[key == cut])
    return torch.cat([above, tied])


def sampling_record(logits: torch.Tensor, params: SamplingParams, previous_ids=None) -> SamplingRecord:
    """Every stage from raw logits [V] to the final distribution, nothing drawn yet (see `draw`)."""
    if logits.dim() != 1 or logits.numel() == 0:
        raise ValueError(f"logits must be one position's scores, shape [vocabulary]; got {tuple(logits.shape)}")
    logits = logits.detach().float()
    # One reduction catches NaN (max propagates it), +inf and "every token is -inf": no distribution exists.
    if not math.isfinite(float(logits.max())):
        raise ValueError("logits must hold no NaN or +inf and at least one finite value")
    penalized = apply_penalties(logits, previous_ids, params.repetition_penalty, params.presence_penalty,
                                params.frequency_penalty)

    if params.greedy:
        # HF ignores the warpers without sampling; the page still shows softmax(penalized) as "before".
        best = int(penalized.argmax())  # first index on ties
        kept = torch.zeros_like(penalized, dtype=torch.bool)
        kept[best] = True
        probs_before = penalized.softmax(-1)
        return SamplingRecord(logits, penalized, penalized, probs_before, kept, kept.clone(),
                              float(probs_before[best]), kept.float(), params)

    scaled = apply_temperature(penalized, params.temperature)
    kept_k = top_k_mask(scaled, params.top_k)
    filtered = scaled.masked_fill(~kept_k, NEG_INF)
    kept_p = top_p_mask(filtered, params.top_p) & kept_k
    looked_at = filtered.softmax(-1)  # the distribution top-p cut, for the mass it kept
    probs = filtered.masked_fill(~kept_p, NEG_INF).softmax(-1)
    return SamplingRecord(logits, penalized, scaled, scaled.softmax(-1), kept_k, kept_p,
                          float((looked_at * kept_p).sum()), probs, params)


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, *,
                     previous_ids=None, repetition_penalty: float = 1.0, presence_penalty: float = 0.0,
                     frequency_penalty: float = 0.0) -> torch.Tensor:
    """The distribution the next token is drawn from: float32 [V] on the logits' device, summing to 1."""
    params = SamplingParams(temperature, top_k, top_p, repetition_penalty, presence_penalty, frequency_penalty)
    return sampling_record(logits, params, previous_ids).probs


# ----------------------------------------------------------------------------------------------------------
# Drawing

def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator on `device`, seeded with `seed` (None: a fresh nondeterministic seed)."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator


def draw_token(probs: torch.Tensor, generator: torch.Generator | None = None, greedy: bool = False) -> int:
    """One token id from a distribution [V]: torch.multinomial with `generator`, so a seeded generator repeats
    its draws. greedy: the argmax (first index on ties), without touching the generator."""
    if greedy:
        return int(probs.argmax())
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)  # multinomial needs both on one device; the generator decides
    return int(torch.multinomial(probs, 1, generator=generator))


def draw(record: SamplingRecord, generator: torch.Generator | None = None) -> SamplingRecord:
    """The record with its token and rank filled in (same as `record.with_draw(generator)`)."""
    if not isinstance(record, SamplingRecord):
        raise TypeError("draw takes a SamplingRecord; use draw_token(probs, generator) for a bare distribution")
    return record.with_draw(generator)
