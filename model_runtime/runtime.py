"""`load_gpt2` and the object it returns: tokenizer + model + device, with `trace` and `generate`."""
from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterable, Sequence

import torch

from .config import GPT2Config
from .model import GPT
from .tokenizer import GPT2Tokenizer, get_tokenizer
from .trace import CaptureSpec, Recorder, Trace
from .weights import DOWNLOAD_COMMAND, WeightsUnavailable, family_config, load_checkpoint

# Weights' dtype -> the activations' dtype. "int8": weight-only int8 (per output channel, see quantize.py), with
# bfloat16 activations, LayerNorms and biases.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.bfloat16}


class PromptError(ValueError):
    """A prompt the model cannot take (empty, too long, ids out of range); the message is for people."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but torch sees no CUDA device")
    return device


class GPT2Runtime:
    """One loaded model. Forward passes are serialised by a lock: many web sessions share one model, and one
    pass at a time keeps memory bounded and predictable on a small server."""

    def __init__(self, model: GPT, tokenizer: GPT2Tokenizer, *, pretrained: bool, source: str, message: str,
                 untrained_reason: str | None = None):
        self.model = model.eval()
        self.config: GPT2Config = model.config
        self.tokenizer = tokenizer
        self.pretrained = pretrained
        self.source = source      # where the weights came from
        self.message = message    # one line for people: what was loaded, or why the weights are untrained
        self.untrained_reason = untrained_reason  # why there are no trained weights (the page words the rest)
        self.lock = threading.RLock()

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identifies the weights (not the object): equal for every process that loaded the same model."""
        digest = hashlib.sha1(repr(self.config).encode() + self.weights_dtype.encode())
        last = self.model.h[-1].mlp.c_proj
        for tensor in (getattr(self.model.wte, "qweight", self.model.wte.weight)[:2],
                       getattr(last, "qweight", last.weight)[:2], self.model.ln_f.bias):
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def device(self) -> torch.device:
        return self.model.ln_f.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The activations' (and KV cache's) dtype: bfloat16 for int8 weights."""
        return self.model.ln_f.weight.dtype

    @property
    def weights_dtype(self) -> str:
        """One of "float32", "bfloat16", "int8" (a key of DTYPES)."""
        from .quantize import is_int8
        return "int8" if is_int8(self.model) else str(self.dtype).removeprefix("torch.")

    def weight_bytes(self) -> int:
        """Memory the weights take (int8 weights with their scales; the tied matrix once)."""
        from .quantize import weight_bytes
        return weight_bytes(self.model)

    def encode(self, text_or_ids: str | Sequence[int]) -> list[int]:
        """Token ids for a prompt, checked against the vocabulary and the context length."""
        if isinstance(text_or_ids, str):
            ids = self.tokenizer.encode(text_or_ids)
        else:
            ids = [int(i) for i in text_or_ids]
            bad = [i for i in ids if not 0 <= i < self.config.vocab_size]
            if bad:
                raise PromptError(f"token ids must lie in 0..{self.config.vocab_size - 1}; got {bad[:5]}")
        if not ids:
            raise PromptError("The prompt is empty: type some text first.")
        if len(ids) > self.config.n_ctx:
            raise PromptError(f"The prompt is {len(ids):,} tokens long; {self.config.name} reads at most "
                              f"{self.config.n_ctx:,}.")
        return ids

    def head_ablation(self, heads: Iterable[tuple[int, int]]) -> dict:
        """Interventions that zero the output (hook_z) of the given (layer, head) pairs."""
        by_layer: dict[int, list[int]] = {}
        for layer, head in heads:
            if not (0 <= layer < self.config.n_layer and 0 <= head < self.config.n_head):
                raise ValueError(f"no head {layer}.{head} in a {self.config.n_layer}x{self.config.n_head} model")
            by_layer.setdefault(layer, []).append(head)

        def zero(heads_here):
            def fn(z):
                z = z.clone()
                z[:, :, heads_here] = 0
                return z
            return fn
        return {f"blocks.{layer}.attn.hook_z": zero(sorted(hs)) for layer, hs in by_layer.items()}

    @torch.inference_mode()
    def trace(self, text_or_ids: str | Sequence[int], capture: CaptureSpec = True,
              ablate: Iterable[tuple[int, int]] = ()) -> Trace:
        """One forward pass over the prompt; the trace holds every selected capture plus the logits."""
        ids = self.encode(text_or_ids)
        idx = torch.tensor([ids], device=self.device)
        with self.lock, Recorder(self.model, capture, self.head_ablation(ablate)) as recorder:
            logits, _ = self.model(idx)
        recorder.captures["logits"] = logits
        return Trace.from_recorder(recorder, ids, self.tokenizer.tokens(ids), self.config)

    def generate(self, prompt_or_ids, **settings):
        """Stream new tokens one step at a time; see `model_runtime.generate.Generation`."""
        from .generate import Generation
        return Generation(self, prompt_or_ids, **settings)

    def beam_search(self, prompt_or_ids, **settings):
        """The n best continuations by beam search, with every step recorded; see `model_runtime.beam`."""
        from .beam import beam_search
        return beam_search(self, prompt_or_ids, **settings)

    def speculative_generate(self, draft: "GPT2Runtime", prompt_or_ids, **settings):
        """Rounds of speculative decoding with `draft` proposing; see `model_runtime.speculative.Speculation`."""
        from .speculative import Speculation
        return Speculation(self, draft, prompt_or_ids, **settings)

    def __repr__(self) -> str:
        return (f"GPT2Runtime({self.config.name}, {self.config.n_params / 1e6:.0f}M params, device={self.device}, "
                f"pretrained={self.pretrained})")


def load_gpt2(source: str = "gpt2", device: str | torch.device = "auto", dtype: str = "float32",
              fallback: bool = True) -> GPT2Runtime:
    """Load a GPT-2-family model from a hub id ("gpt2", "openai-community/gpt2-medium"), a folder with
    config.json + weights, or one .safetensors file.

    If a hub id cannot be had (not cached, no network) and `fallback` is true, the model gets untrained GPT-2
    weights instead: `pretrained` is False and `message` says how to fetch the real ones."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    device = resolve_device(device)
    try:
        config, state, origin = load_checkpoint(source)
        with torch.device("meta"):  # no random init, no second copy: the checkpoint's tensors are used as-is
            model = GPT(config)
        model.load_state_dict(state, strict=True, assign=True)
        pretrained, message, reason = True, f"Loaded {config.name} weights from {origin}.", None
    except WeightsUnavailable as why:
        if not fallback:
            raise
        config = family_config(source)
        model = GPT(config).init_untrained()
        pretrained, origin, reason = False, "untrained", str(why)
        message = (f"Untrained weights: {why}, so every number shown comes from random weights. "
                   f"Fetch GPT-2 with `{DOWNLOAD_COMMAND}` and restart.")
    if dtype == "int8":  # quantized from the checkpoint's own (float32) weights
        from .quantize import quantize_int8
        model = quantize_int8(model.to(device))
    else:
        model = model.to(device=device, dtype=DTYPES[dtype])
    return GPT2Runtime(model, get_tokenizer(), pretrained=pretrained, source=origin, message=message,
                       untrained_reason=reason)
