"""Our GPT-2 against `transformers`' on the same (random) weights, and the trace's shapes and invariants."""
import json
import time

import pytest
import torch
from safetensors.torch import save_file

from model_runtime import FAMILY, GPT2Config, PromptError, load_gpt2
from model_runtime.model import GPT
from model_runtime.trace import hook_point_names

from .conftest import TINY, save_random_hf_gpt2

TOL = 1e-4


def hf_outputs(hf, ids):
    with torch.no_grad():
        return hf(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)


def assert_matches_hf(model, hf, ids):
    trace = model.trace(ids)
    out = hf_outputs(hf, ids)
    n_layer = model.config.n_layer
    assert (trace.logits - out.logits[0]).abs().max() <= TOL
    assert len(out.attentions) == n_layer
    for layer in range(n_layer):
        pattern = trace[f"blocks.{layer}.attn.hook_pattern"]
        assert (pattern - out.attentions[layer][0]).abs().max() <= TOL, layer
    # hidden_states: the embeddings, each block's output, and (last) the final LayerNorm's output.
    assert len(out.hidden_states) == n_layer + 1
    assert (trace["blocks.0.hook_resid_pre"] - out.hidden_states[0][0]).abs().max() <= TOL
    for layer in range(n_layer - 1):
        assert (trace[f"blocks.{layer}.hook_resid_post"] - out.hidden_states[layer + 1][0]).abs().max() <= TOL
    assert (trace["ln_final.hook_normalized"] - out.hidden_states[-1][0]).abs().max() <= TOL


@pytest.mark.parametrize("length", [1, 7, 64, 1024])
def test_full_size_matches_transformers(full_model, full_hf, length):
    ids = torch.randint(0, 50257, (length,), generator=torch.Generator().manual_seed(length)).tolist()
    assert_matches_hf(full_model, full_hf[1], ids)


def test_full_size_config(full_model):
    cfg = full_model.config
    assert (cfg.vocab_size, cfg.n_ctx, cfg.n_layer, cfg.n_head, cfg.d_head, cfg.d_model, cfg.d_mlp, cfg.ln_eps) == \
        (50257, 1024, 12, 12, 64, 768, 3072, 1e-5)
    assert cfg.n_params == sum(p.numel() for p in full_model.model.parameters()) == 124_439_808
    # The output head is the token embedding itself, not a copy.
    assert not any("lm_head" in name for name, _ in full_model.model.named_parameters())


@pytest.mark.parametrize("length", [1, 7, 64, 128])
def test_tiny_folder_matches_transformers(tiny_model, tiny_hf, length):
    ids = list(range(100, 100 + length))
    assert_matches_hf(tiny_model, tiny_hf[1], ids)


def test_single_safetensors_file(tmp_path):
    hf = save_random_hf_gpt2(tmp_path / "hf", seed=2, n_layer=3, n_head=12, n_embd=768, n_positions=64)
    file = tmp_path / "weights.safetensors"  # no config.json beside it: sizes come from the shapes
    save_file({k: v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}, str(file))
    model = load_gpt2(str(file), device="cpu")
    assert (model.config.n_layer, model.config.n_head, model.config.n_ctx) == (3, 12, 64)
    assert model.pretrained
    assert_matches_hf(model, hf, list(range(500, 530)))


def test_pytorch_bin_folder(tmp_path, tiny_hf):
    folder = tmp_path / "bin"
    folder.mkdir()
    hf = tiny_hf[1]
    torch.save(hf.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(hf.config.to_dict()))
    model = load_gpt2(str(folder), device="cpu")
    assert_matches_hf(model, hf, [1, 2, 3, 4, 5])


def test_hub_cache_layout_loads_offline(tmp_path, tiny_hf, monkeypatch):
    """A repository in the standard HF cache loads with HF_HUB_OFFLINE set, under either of its names."""
    from huggingface_hub import constants
    revision = "0" * 40
    snapshot = tmp_path / "models--openai-community--gpt2" / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (tmp_path / "models--openai-community--gpt2" / "refs").mkdir()
    (tmp_path / "models--openai-community--gpt2" / "refs" / "main").write_text(revision)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_bytes((tiny_hf[0] / name).read_bytes())
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for source in ("gpt2", "openai-community/gpt2"):
        model = load_gpt2(source, device="cpu")
        assert model.pretrained and model.config.n_layer == TINY["n_layer"]
        assert_matches_hf(model, tiny_hf[1], [10, 20, 30])


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_untrained_fallback_is_fast_and_says_so(tmp_path, monkeypatch, env):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    start = time.monotonic()
    model = load_gpt2("openai-community/gpt2", device="cpu")
    assert time.monotonic() - start < 5
    assert model.pretrained is False
    assert "python -m model_runtime.download gpt2" in model.message and "Untrained" in model.message
    assert model.config == FAMILY["gpt2"]
    # Seeded: every start shows the same untrained numbers.
    again = load_gpt2("gpt2", device="cpu")
    assert torch.equal(model.trace("Hello").logits, again.trace("Hello").logits)


def test_bad_local_path_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_gpt2(str(tmp_path / "missing.safetensors"), device="cpu")
    with pytest.raises(FileNotFoundError):
        load_gpt2(str(tmp_path), device="cpu")  # a folder without weights


def test_family_configs_from_hf_json():
    medium = GPT2Config.from_hf({"model_type": "gpt2", "n_embd": 1024, "n_head": 16, "n_layer": 24}, "gpt2-medium")
    assert medium == FAMILY["gpt2-medium"]
    assert FAMILY["distilgpt2"].n_layer == 6 and FAMILY["gpt2-xl"].d_head == 64
    with pytest.raises(ValueError):
        GPT2Config.from_hf({"model_type": "llama"})


def test_trace_shapes_and_names(tiny_model):
    trace = tiny_model.trace("Data visualization empowers users to")
    T, cfg = 6, tiny_model.config
    H, D, d, m = cfg.n_head, cfg.d_head, cfg.d_model, cfg.d_mlp
    assert trace.token_ids == [6601, 32704, 795, 30132, 2985, 284]
    assert [t.id for t in trace.tokens] == trace.token_ids
    assert set(trace.names()) == set(hook_point_names(tiny_model.model))
    expected = {"hook_embed": (T, d), "hook_pos_embed": (T, d), "ln_final.hook_normalized": (T, d),
                "ln_final.hook_scale": (T, 1), "logits": (T, cfg.vocab_size)}
    for layer in range(cfg.n_layer):
        b = f"blocks.{layer}"
        for name in ("hook_resid_pre", "ln1.hook_normalized", "hook_attn_out", "hook_resid_mid",
                     "ln2.hook_normalized", "hook_mlp_out", "hook_resid_post"):
            expected[f"{b}.{name}"] = (T, d)
        for name in ("ln1.hook_mean", "ln1.hook_scale", "ln2.hook_mean", "ln2.hook_scale"):
            expected[f"{b}.{name}"] = (T, 1)
        for name in ("q", "k", "v", "z"):
            expected[f"{b}.attn.hook_{name}"] = (T, H, D)
        for name in ("raw_scores", "attn_scores", "pattern"):
            expected[f"{b}.attn.hook_{name}"] = (H, T, T)
        expected[f"{b}.mlp.hook_pre"] = expected[f"{b}.mlp.hook_post"] = (T, m)
    for name, shape in expected.items():
        assert tuple(trace[name].shape) == shape, name
        assert trace[name].dtype == torch.float32 and trace[name].device.type == "cpu"


def test_attention_invariants(full_model):
    trace = full_model.trace(list(range(1000, 1020)))
    T = 20
    above = torch.ones(T, T, dtype=torch.bool).triu(1)
    for layer in range(12):
        b = f"blocks.{layer}.attn"
        pattern, scores, raw = trace[f"{b}.hook_pattern"], trace[f"{b}.hook_attn_scores"], trace[f"{b}.hook_raw_scores"]
        assert torch.allclose(pattern.sum(-1), torch.ones(12, T), atol=1e-6)
        assert torch.isneginf(scores[:, above]).all() and (pattern[:, above] == 0).all()
        assert torch.isfinite(scores[:, ~above]).all()
        assert torch.equal(scores[:, ~above], (raw / 8)[:, ~above])
        # raw score = q . k per head
        q, k = trace[f"{b}.hook_q"], trace[f"{b}.hook_k"]
        assert torch.allclose(raw, torch.einsum("qhd,khd->hqk", q, k), atol=1e-4)
        # z = pattern @ v per head
        assert torch.allclose(trace[f"{b}.hook_z"], torch.einsum("hqk,khd->qhd", pattern, trace[f"{b}.hook_v"]),
                              atol=1e-5)


def test_layernorm_captures_explain_the_output(tiny_model):
    trace = tiny_model.trace("The cat sat on the mat")
    x = trace["blocks.1.hook_resid_pre"]
    mean, scale = trace["blocks.1.ln1.hook_mean"], trace["blocks.1.ln1.hook_scale"]
    assert torch.allclose(mean, x.mean(-1, keepdim=True))
    ln = tiny_model.model.h[1].ln_1
    assert torch.allclose((x - mean) / scale * ln.weight + ln.bias, trace["blocks.1.ln1.hook_normalized"], atol=1e-5)
    assert torch.allclose(trace["hook_embed"] + trace["hook_pos_embed"], trace["blocks.0.hook_resid_pre"])


def test_capture_changes_no_number(full_model):
    ids = list(range(3000, 3040))
    everything = full_model.trace(ids)
    nothing = full_model.trace(ids, capture=False)
    assert nothing.names() == ["logits"]
    assert torch.equal(everything.logits, nothing.logits)
    some = full_model.trace(ids, capture=["blocks.*.attn.hook_pattern"])
    assert len(some.names()) == 13 and torch.equal(some.logits, everything.logits)


def test_head_ablation(tiny_model):
    ids = list(range(200, 216))
    base = tiny_model.trace(ids)
    assert torch.equal(tiny_model.trace(ids, ablate=[]).logits, base.logits)
    one = tiny_model.trace(ids, ablate=[(1, 2)])
    assert (one["blocks.1.attn.hook_z"][:, 2] == 0).all()
    assert torch.equal(one["blocks.1.attn.hook_z"][:, 0], base["blocks.1.attn.hook_z"][:, 0])
    assert torch.equal(one["blocks.0.hook_resid_post"], base["blocks.0.hook_resid_post"])  # earlier blocks untouched
    all_heads = tiny_model.trace(ids, ablate=[(0, h) for h in range(4)])
    assert (all_heads["blocks.0.hook_attn_out"] == tiny_model.model.h[0].attn.c_proj.bias).all()
    assert not torch.allclose(all_heads.logits, base.logits)
    with pytest.raises(ValueError):
        tiny_model.trace(ids, ablate=[(2, 0)])


def test_prompt_errors(tiny_model):
    for bad in ("", [], [50257], [-1]):
        with pytest.raises(PromptError):
            tiny_model.trace(bad)
    with pytest.raises(PromptError, match="at most 128"):
        tiny_model.trace(list(range(129)))


def test_untrained_init_statistics():
    model = GPT(GPT2Config(n_layer=2, n_head=2, d_model=64, d_mlp=256, n_ctx=32, vocab_size=500)).init_untrained()
    assert abs(model.wte.weight.std().item() - 0.02) < 2e-3
    assert (model.h[0].ln_1.weight == 1).all() and (model.h[0].attn.c_attn.bias == 0).all()
