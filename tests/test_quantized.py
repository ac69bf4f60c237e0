"""bfloat16 and weight-only int8 weights on the full-size random GPT-2: logits close to fp32, the comparison the
page shows, and the int8 layers themselves."""
import pytest
import torch

from model_runtime import load_gpt2
from model_runtime.quantize import (Int8Conv1D, Int8TiedEmbedding, compare_dtypes, converted, int8_matmul,
                                    quantize_per_channel, weight_bytes)

PROMPT = "Data visualization empowers users to explore what the numbers say about the world we live in"
MAX_DLOGIT = {"float32": 0.0, "bfloat16": 0.05, "int8": 0.5}
MIN_TOP10 = {"float32": 10, "bfloat16": 8, "int8": 7}  # measured: 10 and 9 of 10


@pytest.fixture(scope="module")
def low_precision(full_model):
    """Copies of the session's full-size model (converted, not loaded again)."""
    return {name: converted(full_model, name) for name in ("bfloat16", "int8")}


@pytest.fixture(scope="module")
def rows(full_model, low_precision):
    return {row["dtype"]: row for row in compare_dtypes(full_model, PROMPT, decode_tokens=4,
                                                         runtimes=low_precision)}


def test_logits_close_to_float32(full_model, low_precision, rows):
    ids = full_model.encode(PROMPT)
    reference = full_model.trace(ids, capture=False).logits
    top = reference[-1].topk(10).indices.tolist()
    for name, runtime in low_precision.items():
        logits = runtime.trace(ids, capture=False).logits.float()
        delta = float((logits - reference).abs().max())
        overlap = len(set(logits[-1].topk(10).indices.tolist()) & set(top))
        print(f"{name}: max |dlogit| {delta:.4f} over {len(ids)} positions, top-10 agreement {overlap}/10")
        assert delta <= MAX_DLOGIT[name]
        assert overlap >= MIN_TOP10[name]
        # The comparison view shows exactly these numbers.
        assert rows[name]["max_abs_dlogit"] == pytest.approx(delta, abs=1e-6)
        assert rows[name]["top10_overlap"] == overlap


def test_comparison_rows(full_model, rows):
    assert list(rows) == ["float32", "bfloat16", "int8"]
    fp32, bf16, int8 = rows.values()
    assert fp32["weight_bytes"] == 4 * full_model.config.n_params == full_model.weight_bytes()
    assert bf16["weight_ratio"] == 0.5
    assert 0.25 < int8["weight_ratio"] <= 0.3  # int8 matrices, their scales, bf16 position embeddings and norms
    assert fp32["max_abs_dlogit"] == 0 and fp32["top10_same_order"] and fp32["speedup"] == 1
    for row in rows.values():
        assert row["decode_tokens_per_s"] > 0 and len(row["top10"]) == 10
        assert row["speedup"] == pytest.approx(row["decode_tokens_per_s"] / fp32["decode_tokens_per_s"])
        print(row["dtype"], f"{row['weight_bytes'] / 1e6:.0f} MB", f"{row['decode_tokens_per_s']:.1f} tok/s")


def test_int8_runtime(full_model, low_precision):
    int8 = low_precision["int8"]
    assert int8.weights_dtype == "int8" and int8.dtype == torch.bfloat16
    assert isinstance(int8.model.wte, Int8TiedEmbedding) and isinstance(int8.model.h[0].mlp.c_fc, Int8Conv1D)
    assert int8.model.wte.qweight.dtype == torch.int8 and int8.model.h[0].attn.c_attn.qweight.shape == (2304, 768)
    assert len({full_model.fingerprint, low_precision["bfloat16"].fingerprint, int8.fingerprint}) == 3
    # Views that read weights (logit lens, head weights) get the dequantized matrices, in the usual layouts.
    assert int8.model.wte.weight.shape == full_model.model.wte.weight.shape
    assert int8.model.h[3].attn.c_proj.weight.shape == full_model.model.h[3].attn.c_proj.weight.shape
    steps = list(int8.generate(PROMPT, max_new_tokens=3, temperature=0))
    assert len(steps) == 3 and steps[-1].cache_bytes > 0
    with pytest.raises(ValueError, match="dtype"):
        load_gpt2("gpt2", dtype="int4")


def test_load_int8(tiny_hf, tiny_model):
    loaded = load_gpt2(str(tiny_hf[0]), device="cpu", dtype="int8")
    assert loaded.weights_dtype == "int8" and loaded.weight_bytes() < 0.3 * tiny_model.weight_bytes()
    ids = tiny_model.encode(PROMPT)
    assert torch.equal(loaded.trace(ids, capture=False).logits, converted(tiny_model, "int8").trace(ids).logits)


def test_per_channel_quantization():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 48, generator=g) * torch.rand(40, 1, generator=g)  # rows of different scales
    q, scale = quantize_per_channel(w)
    assert q.dtype == torch.int8 and q.abs().max() == 127 and scale.shape == (40,)
    assert ((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-7).all()
    x = torch.randn(3, 48, generator=g)
    exact = x @ (q.float() * scale[:, None]).t()
    assert torch.allclose(int8_matmul(x, q, scale), exact, atol=1e-4)  # the CPU kernel, float32 input
    bf16 = int8_matmul(x.bfloat16(), q, scale).float()
    assert torch.allclose(bf16, exact, rtol=0.02, atol=0.05)
    # A width the CPU kernel cannot take (not a multiple of 16) goes through the dequantizing path.
    q24, s24 = quantize_per_channel(w[:, :24])
    assert torch.allclose(int8_matmul(x[:, :24], q24, s24), x[:, :24] @ (q24.float() * s24[:, None]).t(), atol=1e-4)
    assert weight_bytes(torch.nn.Linear(4, 2)) == (8 + 2) * 4
