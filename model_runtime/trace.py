"""The capture path: a recorder fills one `Trace` through the model's hook points; the views read the trace."""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .config import GPT2Config
from .model import HookPoint
from .tokenizer import Token

# What to capture: True (everything), False (nothing), or glob patterns such as "blocks.*.attn.hook_pattern".
CaptureSpec = bool | Iterable[str]
# An intervention replaces the tensor at a hook point, e.g. zeroing one head's slice of hook_z.
Intervention = Callable[[torch.Tensor], torch.Tensor]


def _wanted(spec: CaptureSpec) -> Callable[[str], bool]:
    if spec is True:
        return lambda name: True
    if spec is False or spec is None:
        return lambda name: False
    patterns = [spec] if isinstance(spec, str) else list(spec)
    matcher = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
    return lambda name: matcher is not None and matcher.match(name) is not None


class Recorder:
    """While active, keeps (a detached reference to) every tensor passing the selected hook points, and applies
    interventions there. An intervention runs before the capture, so a capture shows the tensor the model went on
    with. The model's forward passes must not overlap while a recorder is active (GPT2Runtime holds a lock)."""

    def __init__(self, model: nn.Module, capture: CaptureSpec = True,
                 interventions: dict[str, Intervention] | None = None):
        self.model, self.wanted = model, _wanted(capture)
        self.interventions = interventions or {}
        self.captures: dict[str, torch.Tensor] = {}

    def __enter__(self) -> "Recorder":
        unknown = set(self.interventions) - set(hook_point_names(self.model)) if self.interventions else set()
        if unknown:
            raise KeyError(f"no hook point named {sorted(unknown)}")
        if self.model.board.recorder is not None:
            raise RuntimeError("another recorder is already active on this model")
        self.model.board.recorder = self
        return self

    def visit(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Called by each hook point as the forward pass goes by."""
        intervention = self.interventions.get(name)
        if intervention is not None:
            x = intervention(x)
        if self.wanted(name):
            self.captures[name] = x.detach()
        return x

    def __exit__(self, *exc) -> None:
        self.model.board.recorder = None


def hook_point_names(model: nn.Module) -> list[str]:
    """Every capturable name, in the order the forward pass reaches them."""
    return [m.name for m in model.modules() if isinstance(m, HookPoint)]


@dataclass
class Trace:
    """Everything one forward pass over one sequence produced, on the CPU in float32, batch axis dropped.

    Shapes (T tokens): residual-stream hooks [T, d_model]; ``attn.hook_q/k/v/z`` [T, heads, d_head];
    ``attn.hook_raw_scores/attn_scores/pattern`` [heads, T, T]; ``mlp.hook_pre/post`` [T, d_mlp];
    ``*.hook_mean/hook_scale`` [T, 1]; ``logits`` [T, vocab]."""

    token_ids: list[int]
    tokens: list[Token]
    config: GPT2Config
    captures: dict[str, torch.Tensor] = field(repr=False)

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.captures[name]
        except KeyError:
            raise KeyError(f"{name!r} was not captured; captured: {len(self.captures)} names, "
                           f"see trace.names()") from None

    def __contains__(self, name: str) -> bool:
        return name in self.captures

    def names(self) -> list[str]:
        return list(self.captures)

    @property
    def logits(self) -> torch.Tensor:
        return self["logits"]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.captures.values())

    @classmethod
    def from_recorder(cls, recorder: Recorder, token_ids: list[int], tokens: list[Token],
                      config: GPT2Config) -> "Trace":
        captures = {name: t[0].to("cpu", torch.float32) for name, t in recorder.captures.items()}
        return cls(token_ids=list(token_ids), tokens=tokens, config=config, captures=captures)
