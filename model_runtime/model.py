"""GPT-2 in plain PyTorch, in the spirit of nanoGPT's model.py, with a named hook point at every stage.

Every intermediate a view may show passes through a `HookPoint` (an identity module with a TransformerLens-style
name such as ``blocks.3.attn.hook_pattern``). With no recorder on the model's `HookBoard` the model is an
ordinary GPT-2; the recorder in `trace.py` keeps what passes, and interventions (head ablation) return a changed
tensor. The arithmetic is the same either way, so capturing changes no number.

Parameter names and layouts follow the Hugging Face checkpoint (wte, wpe, h.N.attn.c_attn, ...) so weights load
by name;
shapes in comments use B batch, T new tokens, S all positions (cache + new), H heads, D head size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPT2Config

# Per layer: keys and values of every position seen so far, each [B, H, S, D].
LayerCache = tuple[torch.Tensor, torch.Tensor]


@dataclass
class SlotLayer:
    """One layer of a slot cache for a batched decode step (see engine.SlotCache): keys and values
    [rows, H, capacity, D], row b holding sequence b's positions, right-padded; each sequence's new token goes
    to its own position, `positions[b]`, and attends to columns 0..positions[b] only."""
    k: torch.Tensor
    v: torch.Tensor
    positions: torch.Tensor  # [B] long, on the cache's device
    length: int              # max(positions) + 1: the columns any row can see


class HookBoard:
    """Where a model's hook points report: to the active recorder (see trace.Recorder), or to nobody. One
    assignment switches every hook point of the model on or off, instead of attaching 300 torch hooks per pass."""

    def __init__(self):
        self.recorder = None


class HookPoint(nn.Module):
    """Identity; a place where the recorder or an intervention can look at (or replace) a tensor."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.board: HookBoard | None = None  # set by GPT for all its hook points

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recorder = self.board.recorder if self.board is not None else None
        return x if recorder is None else recorder.visit(self.name, x)


class LayerNorm(nn.Module):
    """LayerNorm (biased variance, as GPT-2) that also shows its mean and scale per token."""

    def __init__(self, d_model: int, eps: float, name: str):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))
        self.eps = eps
        self.hook_mean = HookPoint(f"{name}.hook_mean")              # [B, T, 1]
        self.hook_scale = HookPoint(f"{name}.hook_scale")            # [B, T, 1] sqrt(var + eps)
        self.hook_normalized = HookPoint(f"{name}.hook_normalized")  # [B, T, d_model], after weight and bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The fused kernel does the arithmetic (a written-out LayerNorm costs ~2 ms per decode step); the
        # mean and scale are computed beside it, for display only.
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
        self.hook_mean(mean)
        self.hook_scale((var + self.eps).sqrt())
        return self.hook_normalized(F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps))


class Conv1D(nn.Module):
    """A linear layer with GPT-2's weight layout, [in, out] (x @ W + b). Kept rather than nn.Linear's
    [out, in]: single-token decode steps are matrix-vector products, ~20% faster over this layout on CPU."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(*x.shape[:-1], -1)


class TiedEmbedding(nn.Embedding):
    """The token embedding, which GPT-2 also uses as its output head: rows in, logits out (x @ W^T)."""

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPT2Config, name: str):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        self.c_attn = Conv1D(cfg.d_model, 3 * cfg.d_model)  # q | k | v, each n_head * d_head columns
        self.c_proj = Conv1D(cfg.d_model, cfg.d_model)
        self.hook_q = HookPoint(f"{name}.hook_q")                      # [B, T, H, D]
        self.hook_k = HookPoint(f"{name}.hook_k")                      # [B, T, H, D] (new positions only)
        self.hook_v = HookPoint(f"{name}.hook_v")                      # [B, T, H, D] (new positions only)
        self.hook_raw_scores = HookPoint(f"{name}.hook_raw_scores")    # [B, H, T, S] q.k, unscaled, unmasked
        self.hook_attn_scores = HookPoint(f"{name}.hook_attn_scores")  # [B, H, T, S] /sqrt(D), -inf above diagonal
        self.hook_pattern = HookPoint(f"{name}.hook_pattern")          # [B, H, T, S] softmax over keys
        self.hook_z = HookPoint(f"{name}.hook_z")                      # [B, T, H, D] pattern @ v, per head

    def forward(self, x: torch.Tensor, past: LayerCache | SlotLayer | None = None
                ) -> tuple[torch.Tensor, LayerCache | SlotLayer]:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = self.hook_q(q.view(B, T, self.n_head, self.d_head)).transpose(1, 2)  # [B, H, T, D]
        k = self.hook_k(k.view(B, T, self.n_head, self.d_head)).transpose(1, 2)
        v = self.hook_v(v.view(B, T, self.n_head, self.d_head)).transpose(1, 2)
        if isinstance(past, SlotLayer):  # batched decode (T = 1): each row writes and reads its own columns
            rows = torch.arange(B, device=x.device)
            past.k[rows, :, past.positions] = k[:, :, 0]
            past.v[rows, :, past.positions] = v[:, :, 0]
            k, v = past.k[:B, :, :past.length], past.v[:B, :, :past.length]  # views: rows are packed at 0..B-1
            columns = torch.arange(past.length, device=x.device)
            future = (columns[None, :] > past.positions[:, None])[:, None, None, :]  # [B, 1, 1, S]
            present = past
        else:
            if past is not None:
                k = torch.cat([past[0], k], dim=2)  # [B, H, S, D]
                v = torch.cat([past[1], v], dim=2)
            S = k.size(2)
            # Query i sits at absolute position S - T + i and may look at keys 0 .. S - T + i.
            future = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(S - T + 1)
            present = (k, v)
        # Explicit attention (not a fused kernel) so that scores and pattern exist to be shown; the same
        # path runs with or without capture, so the numbers never depend on whether anyone is looking.
        raw = self.hook_raw_scores(q @ k.transpose(-2, -1))
        scores = self.hook_attn_scores((raw / math.sqrt(self.d_head)).masked_fill(future, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z((pattern @ v).transpose(1, 2))  # [B, T, H, D]
        return self.c_proj(z.reshape(B, T, C)), present


class MLP(nn.Module):
    def __init__(self, cfg: GPT2Config, name: str):
        super().__init__()
        self.c_fc = Conv1D(cfg.d_model, cfg.d_mlp)
        self.c_proj = Conv1D(cfg.d_mlp, cfg.d_model)
        self.hook_pre = HookPoint(f"{name}.hook_pre")    # [B, T, d_mlp] before GELU
        self.hook_post = HookPoint(f"{name}.hook_post")  # [B, T, d_mlp] after GELU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hook_pre(self.c_fc(x))
        post = self.hook_post(F.gelu(pre, approximate="tanh"))  # GPT-2's "gelu_new"
        return self.c_proj(post)


class Block(nn.Module):
    def __init__(self, cfg: GPT2Config, layer: int):
        super().__init__()
        name = f"blocks.{layer}"
        self.ln_1 = LayerNorm(cfg.d_model, cfg.ln_eps, f"{name}.ln1")
        self.attn = CausalSelfAttention(cfg, f"{name}.attn")
        self.ln_2 = LayerNorm(cfg.d_model, cfg.ln_eps, f"{name}.ln2")
        self.mlp = MLP(cfg, f"{name}.mlp")
        self.hook_resid_pre = HookPoint(f"{name}.hook_resid_pre")    # [B, T, d_model]
        self.hook_attn_out = HookPoint(f"{name}.hook_attn_out")
        self.hook_resid_mid = HookPoint(f"{name}.hook_resid_mid")
        self.hook_mlp_out = HookPoint(f"{name}.hook_mlp_out")
        self.hook_resid_post = HookPoint(f"{name}.hook_resid_post")

    def forward(self, x: torch.Tensor, past: LayerCache | SlotLayer | None = None
                ) -> tuple[torch.Tensor, LayerCache | SlotLayer]:
        x = self.hook_resid_pre(x)
        attn_out, present = self.attn(self.ln_1(x), past)
        x = self.hook_resid_mid(x + self.hook_attn_out(attn_out))
        x = self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln_2(x))))
        return x, present


class GPT(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.config = cfg
        self.wte = TiedEmbedding(cfg.vocab_size, cfg.d_model)  # also the output head (tied weights)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.h = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = LayerNorm(cfg.d_model, cfg.ln_eps, "ln_final")
        self.hook_embed = HookPoint("hook_embed")          # [B, T, d_model] rows of wte
        self.hook_pos_embed = HookPoint("hook_pos_embed")  # [B, T, d_model] rows of wpe
        self.hook_logits = HookPoint("logits")             # [B, T, vocab]
        self.board = HookBoard()
        for module in self.modules():
            if isinstance(module, HookPoint):
                module.board = self.board

    def forward(self, idx: torch.Tensor, past: list[LayerCache] | list[SlotLayer] | None = None
                ) -> tuple[torch.Tensor, list[LayerCache] | list[SlotLayer]]:
        """idx [B, T] token ids; past: the cache of earlier positions. Returns logits [B, T, vocab], new cache.

        With a slot cache (a list of SlotLayer, T = 1) every row is a different sequence at its own position:
        the batched decode step of the engine."""
        B, T = idx.shape
        if past and isinstance(past[0], SlotLayer):
            pos, end = past[0].positions[:, None], past[0].length  # [B, 1]
        else:
            start = past[0][0].size(2) if past else 0  # new tokens continue after the cached positions
            pos, end = torch.arange(start, start + T, device=idx.device).unsqueeze(0), start + T
        if end > self.config.n_ctx:
            raise ValueError(f"{end} positions exceed the context of {self.config.n_ctx}")
        x = self.hook_embed(self.wte(idx)) + self.hook_pos_embed(self.wpe(pos))
        cache = []
        for i, block in enumerate(self.h):
            x, present = block(x, past[i] if past else None)
            cache.append(present)
        logits = self.hook_logits(self.wte.unembed(self.ln_f(x)))
        return logits, cache

    @torch.no_grad()
    def init_untrained(self, seed: int = 0) -> "GPT":
        """GPT-2's initialisation (normal 0.02, residual projections scaled by 1/sqrt(2 * n_layer)), seeded so
        every start of the app shows the same untrained numbers."""
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif ".ln_" in name or name.startswith("ln_f"):
                p.fill_(1.0)
            else:
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith("c_proj.weight") else 0.02
                p.copy_(torch.randn(p.shape, generator=g) * std)
        return self
