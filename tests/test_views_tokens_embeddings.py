"""Tokenization and embedding views: pure figure builders checked against the tiny model's tables and trace,
and their callbacks called through the app's callback endpoint (no browser)."""
import json

import numpy as np
import pytest
from dash import html

from app import create_app
from components import embeddings, ids, tokens
from components.common import axis_labels
from model_runtime import GPT2Config

PROMPT = "Data visualization empowers users to"
ODD = "naïve café 😀 \t tab\nnew line  two spaces"


@pytest.fixture(scope="module")
def trace(tiny_model):
    return tiny_model.trace(PROMPT)


@pytest.fixture(scope="module")
def client(tiny_model):
    return create_app(runtime=tiny_model).server.test_client()


def call(client, output_id, inputs: dict):
    """Fire the callback whose outputs include `output_id`, with the given input values, as the browser does."""
    deps = json.loads(client.get("/_dash-dependencies").data)
    dep = next(d for d in deps if f"..{output_id}." in d["output"] or d["output"].startswith(f"{output_id}."))
    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
               for part in dep["output"].strip(".").split("...")]
    payload = {"output": dep["output"], "outputs": outputs,
               "inputs": [{"id": i["id"], "property": i["property"], "value": inputs.get(i["id"])}
                          for i in dep["inputs"]],
               "state": [], "changedPropIds": [f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}"]}
    response = client.post("/_dash-update-component", data=json.dumps(payload), content_type="application/json")
    return response.status_code, (response.get_json() or {}).get("response", {}) if response.data else {}


def texts(component) -> list[str]:
    """Every string in a component tree (props other than children are not text on the page)."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, dict):  # JSON from the endpoint
        return texts(component.get("props", {}).get("children"))
    if isinstance(component, list):
        return [t for c in component for t in texts(c)]
    if component is None or isinstance(component, (int, float)):
        return []
    return texts(component.children)


# Tokens: pure pieces

def test_one_chip_per_token_in_order_with_ids_and_exact_bytes(tiny_model):
    token_ids = tiny_model.tokenizer.encode(ODD)
    toks = tiny_model.tokenizer.tokens(token_ids)
    chips = [tokens.chip(i, t, generated=False) for i, t in enumerate(toks)]
    assert len(chips) == len(token_ids)
    for i, (chip, tok) in enumerate(zip(chips, toks)):
        text, token_id = chip.children
        assert isinstance(text.children, str) and text.children == tok.text  # display text, plain string
        assert token_id.children == str(tok.id)
        assert f"id {tok.id}" in chip.title and f"position {i}" in chip.title
        assert " ".join(f"{b:02X}" for b in tok.bytes) in chip.title
    shown = [c.children[0].children for c in chips]
    assert any(s.startswith("␣") for s in shown) and any("↵" in s for s in shown) and any("⇥" in s for s in shown)
    assert "".join(shown).count("<0x") >= 2  # the emoji's bytes are split over tokens and shown as bytes
    assert b"".join(t.bytes for t in toks) == ODD.encode()


def test_generated_tokens_are_marked():
    from model_runtime.tokenizer import Token
    tok = Token(42, b"K", "K")
    assert "token-generated" not in tokens.chip(0, tok, generated=False).className
    generated = tokens.chip(5, tok, generated=True)
    assert "token-generated" in generated.className and "generated" in generated.title


def test_summary_counts_tokens_characters_and_bytes(tiny_model):
    token_ids = tiny_model.tokenizer.encode(ODD)
    toks = tiny_model.tokenizer.tokens(token_ids)
    summary = tokens.token_summary(toks, ODD)
    assert summary.startswith(f"{len(toks)} tokens from {len(ODD)} characters ({len(ODD.encode())} bytes")
    assert "generated" not in summary
    assert "The last 2 (orange) were generated" in tokens.token_summary(toks, ODD, n_prompt=len(toks) - 2)
    assert tokens.token_summary(1, "a").startswith("1 token from 1 characters")


@pytest.mark.parametrize("sequence, problem", [
    (None, "Run a prompt"), ({}, "Run a prompt"), ({"ids": []}, "Run a prompt"), ({"ids": "junk"}, "Run a prompt"),
    ({"ids": [1, 2] * 100}, "at most 128"), ({"ids": [10**9]}, "token ids"), ({"ids": [1, -1]}, "token ids"),
    ({"ids": [1.5]}, "token ids"), ({"ids": [True]}, "token ids"), ({"ids": [None]}, "token ids"),
])
def test_sequence_store_is_checked(sequence, problem):
    seq, n_prompt, message = tokens.sequence_ids(sequence, 50257, 128)
    assert seq is None and problem in message


def test_sequence_store_prompt_length():
    assert tokens.sequence_ids({"ids": [1, 2, 3], "n_prompt": 2}, 50257, 128) == ([1, 2, 3], 2, None)
    for junk in (None, 0, 4, "2", 2.0, True):  # missing or nonsense: all of it is prompt
        assert tokens.sequence_ids({"ids": [1, 2, 3], "n_prompt": junk}, 50257, 128)[1] == 3


# Tokens: the callback

def test_tokens_callback_draws_one_chip_per_token(client, tiny_model):
    token_ids = tiny_model.tokenizer.encode(PROMPT)
    status, out = call(client, "token-chips", {ids.SEQUENCE: {"ids": token_ids, "n_prompt": 4}, ids.VIEW: "tokens"})
    assert status == 200
    chips = out["token-chips"]["children"]
    assert len(chips) == len(token_ids)
    assert [c["props"]["className"] for c in chips].count("token-chip token-generated") == len(token_ids) - 4
    assert [c["props"]["children"][1]["props"]["children"] for c in chips] == [str(i) for i in token_ids]
    assert out["token-summary"]["children"].startswith(f"{len(token_ids)} tokens from {len(PROMPT)} characters")


def test_tokens_callback_shows_markup_as_text(client, tiny_model):
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    token_ids = tiny_model.tokenizer.encode(hostile)
    status, out = call(client, "token-chips", {ids.SEQUENCE: {"ids": token_ids}, ids.VIEW: "tokens"})
    chips = out["token-chips"]["children"]
    assert status == 200 and all(c["type"] == "Button" for c in chips)  # clickable chips (BPE merges)
    assert {c["props"]["children"][0]["type"] for c in chips} == {"Span"}
    shown = "".join(c["props"]["children"][0]["props"]["children"] for c in chips)
    assert shown.replace("␣", " ") == hostile


def test_tokens_callback_waits_for_its_tab_and_answers_junk(client):
    status, _ = call(client, "token-chips", {ids.SEQUENCE: {"ids": [1, 2]}, ids.VIEW: "embeddings"})
    assert status == 204  # not open: nothing computed, nothing sent
    for junk in (None, {"ids": [10**9]}, {"ids": "x"}, [1, 2], "text", 5):
        status, out = call(client, "token-chips", {ids.SEQUENCE: junk, ids.VIEW: "tokens"})
        assert status == 200 and out["token-chips"]["children"] == [] and out["token-summary"]["children"]


def test_tokens_explanation_and_equation():
    explain = tokens.section()[0]
    assert explain.className == "explain" and "BPE" in explain.children[1].children
    assert "tokens" in explain.children[0].children and texts(explain)


# Embeddings: pure builders

def test_parts_figure_holds_wte_rows_wpe_rows_and_their_sum(tiny_model, trace):
    labels = axis_labels(trace.tokens)
    wte = tiny_model.model.wte.weight.detach().numpy()
    wpe = tiny_model.model.wpe.weight.detach().numpy()
    tok, pos = trace["hook_embed"].numpy(), trace["hook_pos_embed"].numpy()
    assert np.array_equal(tok, wte[trace.token_ids]) and np.array_equal(pos, wpe[: len(labels)])
    fig = embeddings.embedding_parts_figure(tok, pos, labels)
    z = [np.asarray(t.z) for t in fig.data]
    assert len(fig.data) == 3 and all(t.type == "heatmap" for t in fig.data)
    assert np.array_equal(z[0], wte[trace.token_ids]) and np.array_equal(z[1], wpe[: len(labels)])
    assert np.array_equal(z[2], wte[trace.token_ids] + wpe[: len(labels)])
    assert np.allclose(z[2], trace["blocks.0.hook_resid_pre"].numpy())  # what block 1 reads
    assert all(z_.dtype == np.float32 and z_.shape == (len(labels), tiny_model.config.d_model) for z_ in z)
    for t in fig.data:  # same labels, one diverging scale centred at 0 shared by the three panels
        assert list(t.y) == labels and t.zmid == 0 and t.zmin == -t.zmax == -fig.data[0].zmax
        assert "token %{y}" in t.hovertemplate and "dimension %{x}" in t.hovertemplate and "%{z" in t.hovertemplate
    assert [t.showscale for t in fig.data] == [True, False, False]
    titles = [a.text for a in fig.layout.annotations]
    assert [s.split()[0] for s in titles] == ["Token", "Position", "Sum"]


def test_one_part_heatmap(trace):
    labels = axis_labels(trace.tokens)
    pos = trace["hook_pos_embed"].numpy()
    fig = embeddings.embedding_heatmap_figure(pos, labels, "Position embedding")
    assert np.array_equal(fig.data[0].z, pos) and list(fig.data[0].y) == labels and fig.data[0].zmid == 0
    assert fig.layout.title.text == "Position embedding" and "dimension" in fig.layout.xaxis.title.text
    assert fig.layout.yaxis.autorange == "reversed"  # first token on top, as in the chips


def test_colour_range_ignores_a_few_outliers():
    matrix = np.random.default_rng(0).normal(0, 0.1, (6, 768)).astype(np.float32)
    matrix[0, 5] = 40.0  # GPT-2's embeddings have a few huge dimensions
    limit = embeddings.colour_limit(matrix)
    assert 0.1 < limit < 1.0
    assert embeddings.colour_limit(np.zeros((2, 3))) == 1.0


def test_norms_figure(trace):
    labels = axis_labels(trace.tokens)
    tok, pos = trace["hook_embed"].numpy(), trace["hook_pos_embed"].numpy()
    fig = embeddings.embedding_norms_figure(tok, pos, labels)
    assert [t.name for t in fig.data] == ["‖token‖", "‖position‖", "‖sum‖"]
    for t, matrix in zip(fig.data, (tok, pos, tok + pos)):
        assert list(t.x) == labels and np.allclose(t.y, np.linalg.norm(matrix, axis=1), rtol=1e-6)


def test_long_prompt_ticks_thin_out():
    labels = [f"{i}:␣word" for i in range(1000)]
    fig = embeddings.embedding_norms_figure(np.ones((1000, 4)), np.ones((1000, 4)), labels)
    assert len(fig.layout.xaxis.tickvals) <= 40


def test_table_facts_for_gpt2_small():
    facts = embeddings.table_facts(GPT2Config(), 6)
    assert "50,257 × 768 = 38,597,376" in facts and "1,024 × 768 = 786,432" in facts and "6 rows" in facts


def test_embeddings_explanation_and_equation():
    explain = embeddings.section()[0]
    assert "W_E[t_i] + W_P[i]" in explain.children[1].children
    assert "position-embedding" in explain.children[0].children


# Embeddings: the callback

def test_embeddings_callback(client, tiny_model, trace):
    seq = {"ids": trace.token_ids, "n_prompt": len(trace.token_ids)}
    status, out = call(client, "embedding-heatmap", {ids.SEQUENCE: seq, ids.VIEW: "embeddings",
                                                     "embedding-part": "all"})
    assert status == 200
    heat = out["embedding-heatmap"]["figure"]
    assert len(heat["data"]) == 3 and heat["data"][0]["z"]["dtype"] == "f4"  # compact binary, not lists
    assert f"{tiny_model.config.vocab_size:,} × {tiny_model.config.d_model:,}" in out["embedding-facts"]["children"]
    status, out = call(client, "embedding-heatmap", {ids.SEQUENCE: seq, ids.VIEW: "embeddings",
                                                     "embedding-part": "position"})
    assert len(out["embedding-heatmap"]["figure"]["data"]) == 1
    assert len(out["embedding-norms"]["figure"]["data"]) == 3


def test_embeddings_callback_long_prompt_sends_the_last_rows(client, tiny_model):
    token_ids = tiny_model.tokenizer.encode(" word" * 100)
    status, out = call(client, "embedding-heatmap", {ids.SEQUENCE: {"ids": token_ids}, ids.VIEW: "embeddings",
                                                     "embedding-part": "junk"})
    heat = out["embedding-heatmap"]["figure"]
    assert status == 200 and len(heat["data"]) == 3  # junk part: all three
    assert len(heat["data"][0]["y"]) == embeddings.MAX_ROWS_ALL and heat["data"][0]["y"][-1].startswith("99:")
    assert "last 32 of 100" in heat["layout"]["title"]["text"]
    assert len(out["embedding-norms"]["figure"]["data"][0]["x"]) == 100  # lengths for every token


def test_embeddings_callback_answers_junk(client):
    assert call(client, "embedding-heatmap", {ids.SEQUENCE: {"ids": [1]}, ids.VIEW: "tokens"})[0] == 204
    for junk in (None, {"ids": [-1]}, {"ids": [1] * 10_000}, "x"):
        status, out = call(client, "embedding-heatmap", {ids.SEQUENCE: junk, ids.VIEW: "embeddings"})
        annotation = out["embedding-heatmap"]["figure"]["layout"]["annotations"][0]["text"]
        assert status == 200 and annotation and "Traceback" not in annotation


def test_chips_are_text_components_only(tiny_model):
    chip = tokens.chip(0, tiny_model.tokenizer.token(27), generated=False)  # "<"
    assert isinstance(chip, html.Button) and all(isinstance(c, html.Span) for c in chip.children)
    assert chip.children[0].children == "<"


def test_clicking_a_token_shows_its_merges_in_rank_order(tiny_model):
    """BPE merges in the Tokens view: the panel lists the tokenizer's merges for that token, in the order
    BPE made them (ranks never decrease), ending in the token itself; replaying them gives its id."""
    tok = tiny_model.tokenizer
    token_id = tok.encode(" visualization")[0]
    panel = tokens.merges_panel(tok, token_id, 3)
    merges = tok.merges(token_id)
    rows = panel.children[-1].children
    assert len(rows) == len(merges) >= 2
    assert [m.rank for m in merges] == sorted(m.rank for m in merges)
    for row, m in zip(rows, merges):
        assert row.children[0].children == f"rank {m.rank:,}: "
        assert row.children[1] == f"{tok.token(m.left).text} + {tok.token(m.right).text} → {tok.token(m.merged).text}"
    assert merges[-1].merged == token_id and rows[-1].children[1].endswith(tok.token(token_id).text)
    assert "id %d" % token_id in panel.children[0].children
    assert "single byte" in str(tokens.merges_panel(tok, tok.encode("a")[0], 0).children)
    assert "special token" in str(tokens.merges_panel(tok, tok.eot_id, 0).children)


def test_token_chips_are_buttons_that_name_their_position(tiny_model):
    token_ids = tiny_model.tokenizer.encode("Hello world")
    chip = tokens.chip(1, tiny_model.tokenizer.token(token_ids[1]), generated=False)
    assert chip.id == {"type": tokens.CHIP, "index": 1} and "merges" in chip.title
