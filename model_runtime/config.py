"""Sizes of a GPT-2-family model, read from a Hugging Face `config.json` or the family table."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GPT2Config:
    vocab_size: int = 50257   # 50,000 BPE merges + 256 byte tokens + <|endoftext|>
    n_ctx: int = 1024         # context length (rows of the position-embedding table)
    n_layer: int = 12
    n_head: int = 12
    d_model: int = 768
    d_mlp: int = 3072         # 4 * d_model in every released GPT-2
    ln_eps: float = 1e-5
    name: str = "gpt2"

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @property
    def n_params(self) -> int:
        """Parameters with the output head tied to the token embedding (counted once)."""
        d, m = self.d_model, self.d_mlp
        per_block = (2 * d) * 2 + (d * 3 * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d)
        return self.vocab_size * d + self.n_ctx * d + self.n_layer * per_block + 2 * d

    @classmethod
    def from_hf(cls, hf: dict, name: str = "gpt2") -> "GPT2Config":
        """From a Hugging Face GPT-2 `config.json` dictionary (n_positions/n_embd/n_inner naming)."""
        if hf.get("model_type", "gpt2") != "gpt2":
            raise ValueError(f"not a GPT-2 checkpoint: model_type is {hf.get('model_type')!r}")
        activation = hf.get("activation_function", "gelu_new")
        if activation not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"unsupported activation {activation!r}: GPT-2 uses the tanh GELU (gelu_new)")
        d_model = hf.get("n_embd", 768)
        return cls(
            vocab_size=hf.get("vocab_size", 50257),
            n_ctx=hf.get("n_positions", hf.get("n_ctx", 1024)),
            n_layer=hf.get("n_layer", 12),
            n_head=hf.get("n_head", 12),
            d_model=d_model,
            d_mlp=hf.get("n_inner") or 4 * d_model,
            ln_eps=hf.get("layer_norm_epsilon", 1e-5),
            name=name,
        )

    def to_dict(self) -> dict:
        return asdict(self)


# The released GPT-2 family. A bare .safetensors file has no config.json; its tensor shapes give every size
# except the head count, which this table supplies.
FAMILY = {
    "gpt2": GPT2Config(name="gpt2"),
    "distilgpt2": GPT2Config(n_layer=6, name="distilgpt2"),
    "gpt2-medium": GPT2Config(n_layer=24, n_head=16, d_model=1024, d_mlp=4096, name="gpt2-medium"),
    "gpt2-large": GPT2Config(n_layer=36, n_head=20, d_model=1280, d_mlp=5120, name="gpt2-large"),
    "gpt2-xl": GPT2Config(n_layer=48, n_head=25, d_model=1600, d_mlp=6400, name="gpt2-xl"),
}
HEADS_BY_WIDTH = {cfg.d_model: cfg.n_head for cfg in FAMILY.values()}
