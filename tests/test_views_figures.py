"""Figure builders and view computations, checked against the trace they draw (no browser)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from components import ablation, attention, embeddings, heads, logit_lens, mlp, residual, tokens
from components.common import axis_labels

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def trace(tiny_model):
    return tiny_model.trace(PROMPT)


def test_token_chips_are_text_with_bytes(tiny_model, trace):
    chips = [tokens.chip(i, t, generated=False) for i, t in enumerate(trace.tokens)]
    assert len(chips) == len(tiny_model.tokenizer.encode(PROMPT))
    assert chips[1].children[0].children == "␣Mary" and "bytes 20 4D 61 72 79" in chips[1].title
    assert tokens.token_summary(3, "abc").startswith("3 tokens from 3 characters")


def test_embedding_figures_hold_the_table_rows(tiny_model, trace):
    labels = axis_labels(trace.tokens)
    tok, pos = trace["hook_embed"].numpy(), trace["hook_pos_embed"].numpy()
    assert np.array_equal(tok, tiny_model.model.wte.weight[trace.token_ids].detach().numpy())
    assert np.array_equal(pos, tiny_model.model.wpe.weight[: len(labels)].detach().numpy())
    fig = embeddings.embedding_heatmap_figure(tok + pos, labels, "sum")
    assert np.allclose(fig.data[0].z, trace["blocks.0.hook_resid_pre"].numpy()) and list(fig.data[0].y) == labels
    norms = embeddings.embedding_norms_figure(tok, pos, labels)
    assert np.allclose(norms.data[2].y, np.linalg.norm(tok + pos, axis=1), rtol=1e-5)
    assert "38,597,376" in embeddings.table_facts(type(tiny_model.config)())


def test_attention_figures_match_the_capture(tiny_model, trace):
    layer, head = 1, 2
    arrays = attention.head_arrays(trace, layer, head)
    labels = axis_labels(trace.tokens)
    fig = attention.scores_figure(arrays, labels, "t")
    raw, scaled, masked, pattern = (np.array(d.z, dtype=float) for d in fig.data)
    upper = np.triu(np.ones_like(raw, dtype=bool), 1)
    full = tiny_model.trace(PROMPT)  # with raw and scaled scores captured
    assert np.allclose(raw, full[f"blocks.{layer}.attn.hook_raw_scores"][head].numpy(), atol=1e-5)
    assert np.allclose(scaled, raw / np.sqrt(tiny_model.config.d_head), atol=1e-6)  # d_head 16 here, 64 in GPT-2
    assert np.isnan(masked[upper]).all() and np.isnan(pattern[upper]).all()  # masked cells are drawn as masked
    assert not np.isnan(masked[~upper]).any()
    assert np.array_equal(pattern[~upper], trace[f"blocks.{layer}.attn.hook_pattern"][head].numpy()[~upper])
    # pattern · V is the head's output
    assert np.allclose(np.nan_to_num(pattern) @ arrays["v"], arrays["z"], atol=1e-5)


def test_qk_terms_sum_to_the_raw_score(trace):
    arrays = attention.head_arrays(trace, 0, 1)
    q, k = arrays["q"][5], arrays["k"][3]
    every = attention.qk_terms(q, k, top=64)
    assert abs(sum(t["product"] for t in every) - arrays["raw"][5, 3]) < 1e-4
    top = attention.qk_terms(q, k, top=5)
    assert [t["dim"] for t in top] == [t["dim"] for t in every[:5]]
    assert abs(top[0]["product"]) == max(abs(q * k))


def test_head_contributions_add_up_to_attn_out(tiny_model, trace):
    layer = 1
    z = trace[f"blocks.{layer}.attn.hook_z"].numpy()
    proj = tiny_model.model.h[layer].attn.c_proj
    w = proj.weight.detach().numpy()
    per_head = np.einsum("thd,hdm->thm", z, w.reshape(z.shape[1], z.shape[2], -1))
    assert np.allclose(per_head.sum(1) + proj.bias.detach().numpy(), trace[f"blocks.{layer}.hook_attn_out"].numpy(),
                       atol=1e-5)
    assert np.allclose(attention.head_contributions(z, w), np.linalg.norm(per_head, axis=-1).T, atol=1e-5)


def test_head_view_lines_follow_the_weights():
    pattern = np.tril(np.ones((4, 4))) / np.arange(1, 5)[:, None]
    fig = attention.head_view_figure({0: pattern}, ["a", "b", "c", "d"], focus=3)
    lines = [d for d in fig.data if d.mode == "lines" and d.x and d.x[0] is not None]
    assert sum(len(d.x) // 3 for d in lines) == 4  # token 3 attends to 4 tokens, one line each


def test_head_statistics_on_hand_made_patterns():
    T = 5
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    identity, first = np.eye(T), np.zeros((T, T))
    first[:, 0] = 1
    previous = np.eye(T, k=-1)
    previous[0, 0] = 1
    stats = heads.head_statistics(np.stack([uniform, identity, first, previous]))
    assert np.isclose(stats["entropy"][0], np.mean(np.log2(np.arange(1, T + 1))), atol=1e-6)
    assert np.isclose(stats["entropy"][1], 0) and np.isclose(stats["self"][1], 1)
    assert np.isclose(stats["first"][2], 1)
    assert np.isclose(stats["previous"][3], 1)  # rows 1..T-1; row 0 has no previous token


def test_heads_grid_maps_cells_to_heads(trace):
    L, H = trace.config.n_layer, trace.config.n_head
    patterns = np.stack([trace[f"blocks.{l}.attn.hook_pattern"].numpy() for l in range(L)])
    fig = heads.grid_figure(patterns)
    cells = fig.data[1].customdata
    assert len(cells) == L * H and {(int(c[2]), int(c[3])) for c in cells} == {(l, h) for l in range(L) for h in range(H)}
    long = np.random.default_rng(0).random((2, 3, 1024, 1024)).astype(np.float32)
    image, size = heads.grid_image(long)
    assert size == heads.CELL and image.shape == (2 * (heads.CELL + 1) - 1, 3 * (heads.CELL + 1) - 1)


def test_mlp_gelu_and_neurons(trace):
    pre = trace["blocks.0.mlp.hook_pre"].numpy()
    post = trace["blocks.0.mlp.hook_post"].numpy()
    assert np.allclose(mlp.gelu_tanh(pre), post, atol=1e-5)
    assert np.allclose(mlp.gelu_tanh(pre), F.gelu(torch.from_numpy(pre), approximate="tanh").numpy(), atol=1e-6)
    neurons = mlp.most_active_neurons(post, 10)
    assert len(neurons) == 10 and np.abs(post).max(0)[neurons].min() >= np.sort(np.abs(post).max(0))[-10]
    fig = mlp.gelu_figure(pre[3], "x")
    assert np.allclose(fig.data[1].x, pre[3])


def test_residual_norms(trace):
    stages, norms = residual.stream_norms(trace)
    assert len(stages) == 2 * trace.config.n_layer + 1
    assert np.allclose(norms[-1], np.linalg.norm(trace[f"blocks.{trace.config.n_layer - 1}.hook_resid_post"].numpy(),
                                                 axis=1))


def test_logit_lens_last_block_is_the_model(tiny_model, trace):
    labels, stack = logit_lens.lens_stack(trace)
    ln = tiny_model.model.ln_f
    ids_, probs = logit_lens.logit_lens(stack, ln.weight, ln.bias, ln.eps, tiny_model.model.wte.weight)
    expected = trace.logits.softmax(-1).topk(5, dim=-1)
    assert np.array_equal(ids_[-1], expected.indices.numpy())
    assert np.allclose(probs[-1], expected.values.numpy(), atol=1e-5)
    assert labels[0] == "embedding" and len(labels) == trace.config.n_layer + 1


def test_ablation(tiny_model, trace):
    from components import state
    state.model.set(tiny_model)
    base = trace.logits[-1].softmax(-1)
    none = ablation.compare(base, base)
    assert none["kl_bits"] == 0 and none["top_base"] == none["top_ablated"]
    block = frozenset((0, h) for h in range(tiny_model.config.n_head))
    changed = ablation.compare(base, ablation.cache.probs(trace.token_ids, block))
    assert changed["kl_bits"] > 0
    assert ablation.parse_heads([[0, 1], [99, 0], "x", [0, 1]], 2, 4) == frozenset({(0, 1)})
