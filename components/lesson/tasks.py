"""A step's task, checked from the page's state: `check(page, context) -> bool`.

`page` is what the page holds now: prompt, ids (the sequence's token ids), view, block, head, temperature,
top_k, top_p, top_n and generation (the Generation view's last run, or None). `context` knows the step's own
settings, the loaded model's size and how to get a trace, so a task can ask the model (e.g. "is the head on
screen a previous-token head?"). Tasks stay completable on untrained weights."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..heads import head_statistics

PREVIOUS_TOKEN_SHARE = 0.4  # a head that puts this much of each row on the token before is a previous-token head


@dataclass(frozen=True)
class Task:
    text: str
    check: Callable


@dataclass
class Context:
    step: dict            # the step's complete settings (steps.settings)
    n_layer: int
    trace: Callable       # ids -> Trace, cached by the app
    tokens: Callable      # ids -> [Token]


def prompt_changed(page, context) -> bool:
    return isinstance(page.get("prompt"), str) and page["prompt"].strip() != context.step["prompt"].strip()


def head_changed(page, context) -> bool:
    return page.get("view") == "attention" and page.get("head") != context.step["head"]


def block_changed(page, context) -> bool:
    return page.get("block") != context.step["block"]


def block_is(block) -> Callable:
    def check(page, context) -> bool:
        wanted = context.n_layer - 1 if block == "last" else block
        return page.get("block") == wanted and page.get("view") == context.step["view"]
    return check


def setting_below(name: str, limit: float) -> Callable:
    def check(page, context) -> bool:
        value = page.get(name)
        return isinstance(value, (int, float)) and value < limit
    return check


def setting_above(name: str, limit: float) -> Callable:
    def check(page, context) -> bool:
        value = page.get(name)
        return isinstance(value, (int, float)) and value > limit
    return check


def top_k_at_most(k: int) -> Callable:
    def check(page, context) -> bool:
        value = page.get("top_k")
        return isinstance(value, int) and 1 <= value <= k
    return check


def min_tokens(n: int) -> Callable:
    def check(page, context) -> bool:
        return len(page.get("ids") or []) >= n
    return check


def repeated_token(page, context) -> bool:
    ids = page.get("ids") or []
    return prompt_changed(page, context) and len(set(ids)) < len(ids)


def word_in_pieces(n: int) -> Callable:
    """A word (a token that starts with a space or the text, then tokens that continue it with letters) of at
    least `n` tokens."""
    def check(page, context) -> bool:
        run = 0
        for token in context.tokens(page.get("ids") or []):
            text = token.bytes.decode("utf-8", "replace")
            run = run + 1 if run and text[:1].isalpha() else 1
            if run >= n:
                return True
        return False
    return check


def previous_token_head(page, context) -> bool:
    """The attention view is open on a head that puts at least PREVIOUS_TOKEN_SHARE of each token's attention
    on the token before, or on the head with the largest share in the model for this prompt (untrained weights
    have no real one)."""
    ids = page.get("ids") or []
    if page.get("view") != "attention" or len(ids) < 2:
        return False
    trace = context.trace(ids)
    shares = np.stack([head_statistics(trace[f"blocks.{l}.attn.hook_pattern"].numpy())["previous"]
                       for l in range(context.n_layer)])
    block, head = page.get("block"), page.get("head")
    if not (isinstance(block, int) and isinstance(head, int) and 0 <= block < shares.shape[0]
            and 0 <= head < shares.shape[1]):
        return False
    return bool(shares[block, head] >= min(PREVIOUS_TOKEN_SHARE, shares.max()))


def generated(use_cache: bool) -> Callable:
    """A finished run with the KV cache on (or off) since the step opened, in the Generation view's record
    (the run itself or the earlier runs it keeps for comparison)."""
    def check(page, context) -> bool:
        record = page.get("generation")
        if not isinstance(record, dict) or record.get("live"):
            return False
        runs = [record] + [r for r in record.get("history") or [] if isinstance(r, dict)]
        return any(r.get("use_cache") is use_cache and (r.get("new_ids") or r.get("new_tokens")) for r in runs)
    return check
