"""Weight-only int8 GPT-2 (one scale per output channel, the tied embedding / output head included), and the
fp32 / bf16 / int8 comparison the page shows.

Why this implementation: torchao 0.18's `Int8WeightOnlyConfig` (the maintained library for it) ran 6-7x *slower*
than fp32 at decode on this CPU build (torch 2.13 CPU, eager: it dequantizes the whole matrix on every call; it is
meant for torch.compile / GPUs), and torch.ao's `quantize_dynamic` also quantizes the activations, which is not
weight-only. torch's own CPU kernel for weight-only int8, `aten._weight_int8pack_mm` (what torchao and gpt-fast
call on CPU), reads the int8 weights directly: ~2x faster than fp32 on the 768 x 50,257 output head, with
bfloat16 activations (its fast path; with fp32 activations it is 3-6x slower than fp32). So int8 weights run with
bfloat16 activations, LayerNorms, biases and position embeddings. Where that kernel is missing (CUDA) or cannot
take the shape (it needs the input width to be a multiple of 16), the int8 weights are dequantized inside the
matmul instead.
"""
from __future__ import annotations

import copy
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import GPT, Conv1D, TiedEmbedding

COMPUTE_DTYPE = torch.bfloat16  # of an int8 model's activations


def quantize_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output row: weight [out, in] ~= q [out, in] * scale [out], |q| <= 127."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous(), scale


def int8_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [M, in] @ (q * scale)^T -> [M, out], without materialising the float weights where the kernel exists."""
    if x.device.type == "cpu" and x.size(-1) % 16 == 0:  # other widths crash the CPU kernel (torch 2.13)
        return torch.ops.aten._weight_int8pack_mm(x.contiguous(), q, scale.to(x.dtype))
    return F.linear(x, q.to(x.dtype)) * scale.to(x.dtype)


class Int8Conv1D(nn.Module):
    """Conv1D (x @ W + b) with W stored as int8 [out, in] and one scale per output column of W."""

    def __init__(self, conv: Conv1D):
        super().__init__()
        q, scale = quantize_per_channel(conv.weight.t())
        self.register_buffer("qweight", q)
        self.register_buffer("scales", scale)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = int8_matmul(x.reshape(-1, x.size(-1)), self.qweight, self.scales) + self.bias
        return y.view(*x.shape[:-1], -1)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight in Conv1D's [in, out] layout (for views; the forward never builds it)."""
        return (self.qweight.to(self.scales.dtype) * self.scales[:, None]).t()


class Int8TiedEmbedding(nn.Module):
    """The tied embedding / output head in int8, one scale per token row (= per output channel of the head)."""

    def __init__(self, embedding: TiedEmbedding):
        super().__init__()
        q, scale = quantize_per_channel(embedding.weight)
        self.register_buffer("qweight", q)
        self.register_buffer("scales", scale)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.qweight[idx].to(self.scales.dtype) * self.scales[idx].unsqueeze(-1)

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        return int8_matmul(x.reshape(-1, x.size(-1)), self.qweight, self.scales).view(*x.shape[:-1], -1)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized [vocab, d_model] matrix (for views such as the logit lens; built on each access)."""
        return self.qweight.to(self.scales.dtype) * self.scales[:, None]


@torch.no_grad()
def quantize_int8(model: GPT, dtype: torch.dtype = COMPUTE_DTYPE) -> GPT:
    """In place: every Conv1D and the tied embedding to int8 (quantized from the weights as they are, best from
    float32), everything else (and the scales) to `dtype`, the activations' dtype."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, Conv1D):
                setattr(module, name, Int8Conv1D(child))
    model.wte = Int8TiedEmbedding(model.wte)
    return model.to(dtype)  # floating-point tensors only: the int8 ones stay


def is_int8(model: GPT) -> bool:
    return isinstance(model.wte, Int8TiedEmbedding)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every weight the model holds (the tied matrix once; int8 weights with their scales)."""
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def converted(runtime, dtype: str):
    """A copy of a runtime with its weights in "float32", "bfloat16" or "int8" (best made from float32)."""
    from .runtime import GPT2Runtime
    model = copy.deepcopy(runtime.model)
    model = quantize_int8(model) if dtype == "int8" else model.to(getattr(torch, dtype))
    return GPT2Runtime(model, runtime.tokenizer, pretrained=runtime.pretrained, source=runtime.source,
                       message=f"{runtime.message} Weights converted to {dtype}.")


@torch.inference_mode()
def decode_tokens_per_s(runtime, prompt_ids: list[int], n: int = 8) -> float:
    """Greedy decode steps per second after the prefill (one-token forward passes over the KV cache, argmax),
    from the median step: a busy shared CPU stalls single steps, and the median ignores them."""
    model, device = runtime.model, runtime.device
    seconds = []
    with runtime.lock:
        logits, cache = model(torch.tensor([prompt_ids], device=device))
        token = logits[:, -1:].argmax(-1)
        for _ in range(n):
            t0 = time.perf_counter()
            logits, cache = model(token, cache)
            token = logits[:, -1:].argmax(-1)
            if device.type == "cuda":
                torch.cuda.synchronize()  # time the whole step, not its launch
            seconds.append(time.perf_counter() - t0)
    return 1 / statistics.median(seconds)


@torch.inference_mode()
def compare_dtypes(runtime_fp32, prompt, decode_tokens: int = 8, runtimes: dict | None = None) -> list[dict]:
    """fp32 vs bf16 vs int8 on one prompt: one row per dtype with its weight memory, greedy decode tokens/s, the
    largest |logit difference| from fp32 over every position of the prompt, and the top-10 next tokens (at the
    last position) compared with fp32's. `runtimes` may hold ready copies ({"bfloat16": ..., "int8": ...});
    missing ones are converted from `runtime_fp32` (its weights must be float32)."""
    ids = runtime_fp32.encode(prompt)
    runtimes = {"float32": runtime_fp32, **(runtimes or {})}
    for name in ("bfloat16", "int8"):
        if name not in runtimes:
            runtimes[name] = converted(runtime_fp32, name)
    reference = runtime_fp32.trace(ids, capture=False).logits.float()
    ref_top = reference[-1].topk(10).indices.tolist()
    rows = []
    for name in ("float32", "bfloat16", "int8"):
        rt = runtimes[name]
        logits = rt.trace(ids, capture=False).logits.float()
        top = logits[-1].topk(10).indices.tolist()
        rows.append({
            "dtype": name,
            "weight_bytes": weight_bytes(rt.model),
            "decode_tokens_per_s": decode_tokens_per_s(rt, ids, decode_tokens),
            "max_abs_dlogit": float((logits - reference).abs().max()),
            "top10": top,
            "top10_overlap": len(set(top) & set(ref_top)),  # of 10
            "top10_same_order": top == ref_top,
            "top1_same": top[0] == ref_top[0],
        })
    base = rows[0]
    for row in rows:
        row["weight_ratio"] = row["weight_bytes"] / base["weight_bytes"]
        row["speedup"] = row["decode_tokens_per_s"] / base["decode_tokens_per_s"]
    return rows
