"""Every figure for every reader: each view's figures carry a text alternative naming the real top values (the
tests compute those from the trace themselves), a figure's CSV holds exactly its data, and every chart on the
page sits in a named figure box with its text paragraph and its CSV button wired up."""
import csv
import io
import json

import numpy as np
import pytest
import torch

from app import create_app
from bench.dash_client import DashClient
from components import attention, embeddings, heads, ids, layout, residual
from components.common import axis_labels
from components.figure_csv import figure_csv, figure_tables, values
from components.figure_text import text_of

PROMPT = "Data visualization empowers users to"


@pytest.fixture(scope="module")
def client(tiny_model):
    return DashClient(create_app(runtime=tiny_model).server.test_client())


@pytest.fixture(scope="module")
def seq(tiny_model):
    token_ids = tiny_model.tokenizer.encode(PROMPT)
    return {"ids": token_ids, "n_prompt": len(token_ids), "label": "prompt"}


@pytest.fixture(scope="module")
def trace(tiny_model, seq):
    return tiny_model.trace(seq["ids"])


def spoken(token) -> str:
    """How a text alternative names a token: its text, the visible space as a space, trimmed."""
    return token.text.replace("␣", " ").strip()


def figure(client, output, inputs):
    r = client.call(output, inputs)
    assert r.status == 200, r.body
    graph_id, prop = output.split(".")
    return r, r.value(graph_id, prop)


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# ---------------------------------------------------------------- text alternatives name the real top values

def test_attention_text_names_the_last_tokens_top_keys_and_changes_with_the_head(client, tiny_model, seq, trace):
    texts = {}
    for head in (0, 1):
        _, fig = figure(client, "attention-scores.figure", {
            f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "attention", f"{ids.BLOCK}.value": 1,
            f"{ids.HEAD}.value": head})
        weights = trace["blocks.1.attn.hook_pattern"][head, -1].numpy().astype(np.float64)
        first, second = np.argsort(-weights)[:2]
        text = text_of(fig)
        assert text.startswith(f"Block 2, head {head + 1} (L1H{head}): the token “{spoken(trace.tokens[-1])}” attends "
                               f"most to “{spoken(trace.tokens[first])}” ({weights[first]:.2f}), then to "
                               f"“{spoken(trace.tokens[second])}” ({weights[second]:.2f}).")
        texts[head] = text
    assert texts[0] != texts[1]


def test_mlp_text_names_the_most_active_neurons(client, seq, trace):
    r, _ = figure(client, "mlp-top.figure", {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "mlp",
                                             f"{ids.BLOCK}.value": 0, "mlp-token.value": 2})
    post = trace["blocks.0.mlp.hook_post"][2].numpy()
    top = np.argsort(-post)[:3]
    expected = "; ".join(f"neuron {n} ({post[n]:.2f})".replace("-", "−") for n in top)
    assert text_of(r.value("mlp-top", "figure")) == \
        f"Most active neurons for “{spoken(trace.tokens[2])}”: {expected}."


def test_logit_lens_text_names_the_models_own_top_guess(client, tiny_model, seq, trace):
    _, fig = figure(client, "lens-table.figure", {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "logit-lens",
                                                  "lens-token.value": len(seq["ids"]) - 1})
    probs = trace.logits[-1].softmax(-1)
    top = int(probs.argmax())
    guess = f"“{spoken(tiny_model.tokenizer.token(top))}” ({float(probs[top]):.2f})"
    text = text_of(fig)
    assert text.startswith(f"Logit lens at “{spoken(trace.tokens[-1])}”:")
    assert f"after block {tiny_model.config.n_layer} it is {guess}" in text


def test_output_text_names_the_most_likely_next_tokens(client, tiny_model, seq, trace):
    _, fig = figure(client, "output-candidates.figure", {
        f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "output", f"{ids.TEMPERATURE}.value": 1.0,
        f"{ids.TOP_K}.value": 0, f"{ids.TOP_P}.value": 1.0, f"{ids.SEED}.value": 0, f"{ids.TOP_N}.value": 10})
    probs = torch.softmax(trace.logits[-1].double(), -1)
    top = torch.topk(probs, 3)
    likely = "; ".join(f"“{spoken(tiny_model.tokenizer.token(int(i)))}” ({float(p):.3f})"
                       for p, i in zip(top.values, top.indices))
    assert text_of(fig).startswith(f"After “{spoken(trace.tokens[-1])}”: the most likely next tokens are {likely}.")
    _, greedy = figure(client, "output-candidates.figure", {
        f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "output", f"{ids.TEMPERATURE}.value": 0,
        f"{ids.TOP_K}.value": 0, f"{ids.TOP_P}.value": 1.0, f"{ids.SEED}.value": 0, f"{ids.TOP_N}.value": 10})
    assert text_of(greedy).endswith(f"The greedy choice: “{spoken(tiny_model.tokenizer.token(int(top.indices[0])))}”, "
                                    "probability 1.000 after filtering.")


def test_heads_and_residual_texts_name_their_largest_values(client, seq, trace, tiny_model):
    r, _ = figure(client, "heads-grid.figure", {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "heads",
                                                "heads-statistic.value": "first"})
    first = np.stack([trace[f"blocks.{l}.attn.hook_pattern"].numpy()[:, :, 0].mean(-1)
                      for l in range(tiny_model.config.n_layer)])
    block, head = np.unravel_index(np.argmax(first), first.shape)
    assert f"highest at block {block + 1}, head {head + 1} ({first[block, head]:.1%})" in \
        text_of(r.value("heads-statistic-map", "figure"))
    r, _ = figure(client, "residual-writes.figure", {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "residual",
                                                     f"{ids.BLOCK}.value": 0, "residual-token.value": 1,
                                                     "residual-ln.value": "ln1"})
    mlp = [np.linalg.norm(trace[f"blocks.{l}.hook_mlp_out"][1].numpy()) for l in range(tiny_model.config.n_layer)]
    best = int(np.argmax(mlp))
    assert f"the MLP most in block {best + 1} ({mlp[best]:.2f})" in text_of(r.value("residual-writes", "figure"))


def test_every_figure_of_every_view_carries_a_text(client, seq):
    base = {f"{ids.SEQUENCE}.data": seq, f"{ids.BLOCK}.value": 0, f"{ids.HEAD}.value": 0}
    calls = {"embedding-heatmap.figure": {"embedding-part.value": "all"},
             "attention-scores.figure": {}, "attention-headview.figure": {},
             "heads-grid.figure": {"heads-statistic.value": "entropy"}, "mlp-pre.figure": {"mlp-token.value": 0},
             "residual-norms.figure": {"residual-token.value": 0, "residual-ln.value": "ln_final"},
             "lens-table.figure": {"lens-token.value": 0}}
    views = {"embedding": "embeddings", "attention": "attention", "heads": "heads", "mlp": "mlp",
             "residual": "residual", "lens": "logit-lens"}
    for output, extra in calls.items():
        view = views[output.split("-")[0]]
        r = client.call(output, {**base, f"{ids.VIEW}.value": view, **extra})
        assert r.status == 200, output
        body = r.body["response"]
        graphs = [(k, v["figure"]) for k, v in body.items() if "figure" in v]
        for graph_id, fig in graphs:
            if graph_id != "attention-overview":  # drawn only for long prompts: an empty message figure here
                assert len(text_of(fig)) > 40, (graph_id, text_of(fig))


def test_texts_of_figures_built_apart():
    steps = [{"ms": 30.0, "batch_size": 1, "cache_len": 6, "cache_bytes": 2e5},
             {"ms": 10.0, "batch_size": 2, "cache_len": 7, "cache_bytes": 3e5},
             {"ms": 12.0, "batch_size": 4, "cache_len": 8, "cache_bytes": 4e5}]
    from components import generation
    assert text_of(generation.steps_figure(steps)) == (
        "3 steps. Step 0, the prefill, read the prompt in 30.0 ms. The other steps took a median of 11.0 ms each, "
        "in batches of 3.0 runs on average. The KV cache ends at 8 positions (0.40 MB).")
    from components import ablation, common
    assert text_of(common.message_figure("Run a prompt.")) == "Run a prompt."
    result = {"ids": [5, 7, 9], "base": np.array([0.5, 0.3, 0.2]), "ablated": np.array([0.2, 0.6, 0.2]),
              "kl_bits": 0.25}
    from components import figure_text
    assert figure_text.comparison_text(result, ["a", "b", "c"], 2) == (
        "With 2 heads off, the top next token goes from “a” (0.500) to “b” (0.600); KL divergence 0.2500 bits. "
        "The biggest change among the tokens shown: “a”, 0.500 → 0.200.")
    assert figure_text.picker_text(ablation.parse_heads([[1, 2], [0, 0]], 2, 4)) == \
        "Heads switched off (2): block 1, head 1; block 2, head 3."


# ---------------------------------------------------------------- CSV: the figure's own data

def test_scores_csv_is_the_four_heatmaps_with_their_labels(trace):
    arrays = attention.head_arrays(trace, 0, 1)
    labels = axis_labels(trace.tokens)
    fig = attention.scores_figure(arrays, labels, "t")
    tables = figure_tables(fig)
    assert [t.title for t in tables][:4] == ["① QKᵀ: raw scores q·k", "② ÷ √16 = 4  (same colours as ①)",
                                             "③ + causal mask M (grey: −∞, a later token)",
                                             "④ softmax → attention pattern A"]
    rows = parse(figure_csv(fig))
    blocks = [[]]
    for row in rows:
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    assert len(blocks) == 4
    for block, matrix in zip(blocks, ("raw", "scaled", "masked", "pattern")):
        title, header, *body = block
        assert header == [""] + labels and [r[0] for r in body] == labels
        read = np.array([[float(v) if v else np.nan for v in r[1:]] for r in body], dtype=np.float32)
        np.testing.assert_array_equal(read, arrays[matrix])  # exact: float32 written in its shortest form


def test_bar_csv_is_label_and_value_per_trace(trace):
    labels = axis_labels(trace.tokens)
    tok, pos = trace["hook_embed"].numpy(), trace["hook_pos_embed"].numpy()
    rows = parse(figure_csv(embeddings.embedding_norms_figure(tok, pos, labels)))
    assert rows[0] == ["token", "‖token‖", "‖position‖", "‖sum‖"]
    assert [r[0] for r in rows[1:]] == labels
    read = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float32)
    expected = np.stack([np.linalg.norm(m, axis=1) for m in (tok, pos, tok + pos)], axis=1).astype(np.float32)
    np.testing.assert_array_equal(read, expected)
    attn, mlp = residual.block_writes(trace, 2)
    rows = parse(figure_csv(residual.writes_figure(attn, mlp, labels[2])))
    assert rows[0] == ["block", "‖attention output‖", "‖MLP output‖"]
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows[1:]], np.stack([attn, mlp], 1), rtol=1e-6)


def test_grid_and_head_view_csv_list_heads_and_lines(trace, tiny_model):
    L = tiny_model.config.n_layer
    patterns = [trace[f"blocks.{l}.attn.hook_pattern"].numpy() for l in range(L)]
    stats = heads.all_statistics(trace)
    rows = parse(figure_csv(heads.grid_figure(patterns, stats)))
    assert rows[0][:4] == ["block", "head", "L", "H"] and rows[0][4:] == list(heads.STATISTICS.values())
    assert len(rows) == 1 + L * tiny_model.config.n_head
    assert rows[1 + 3][:4] == ["1", "4", "0", "3"]  # block 1, head 4 (L0H3)
    assert float(rows[1 + 3][4]) == pytest.approx(float(stats["entropy"][0, 3]), abs=1e-4)
    labels = axis_labels(trace.tokens)
    pattern = trace["blocks.0.attn.hook_pattern"].numpy()
    rows = parse(figure_csv(attention.head_view_figure({1: pattern[1]}, labels, layer=0)))
    assert rows[0] == ["query", "key", "weight"]
    expected = {(labels[i], labels[j]): pattern[1, i, j] for i in range(len(labels)) for j in range(i + 1)
                if pattern[1, i, j] >= attention.LINE_MIN_WEIGHT}
    assert {(r[0], r[1]): float(r[2]) for r in rows[1:]} == pytest.approx(expected)


def test_csv_reads_the_figure_as_the_browser_sends_it_back(trace):
    """The page holds the figure as JSON (typed arrays as base64 specs; a decoded one comes back as an object
    keyed by index): the CSV is the same whatever form arrives."""
    labels = axis_labels(trace.tokens)
    fig = embeddings.embedding_norms_figure(trace["hook_embed"].numpy(), trace["hook_pos_embed"].numpy(), labels)
    sent = json.loads(fig.to_json())
    assert sent["data"][0]["y"]["dtype"] == "f4"
    as_object = json.loads(json.dumps(sent))
    y = values(sent["data"][0]["y"])
    as_object["data"][0]["y"] = {str(n): float(v) for n, v in enumerate(y)}
    assert figure_csv(sent) == figure_csv(fig)
    assert float(parse(figure_csv(as_object))[1][1]) == pytest.approx(float(y[0]))


def test_csv_button_downloads_the_figure_on_screen(client, trace):
    labels = axis_labels(trace.tokens)
    fig = json.loads(embeddings.embedding_norms_figure(trace["hook_embed"].numpy(), trace["hook_pos_embed"].numpy(),
                                                       labels).to_json())
    r = client.call("embedding-norms-download.data", {"embedding-norms-csv.n_clicks": 1},
                    state={"embedding-norms.figure": fig})
    sent = r.value("embedding-norms-download", "data")
    assert sent["filename"] == "embedding-norms.csv" and sent["type"] == "text/csv"
    assert sent["content"] == figure_csv(fig)
    assert client.call("embedding-norms-download.data", {"embedding-norms-csv.n_clicks": 1},
                       state={"embedding-norms.figure": None}).status == 204


# ---------------------------------------------------------------- every chart on the page is a named, wired figure

def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)


def test_every_chart_is_a_named_figure_with_its_text_and_csv_button(tiny_model):
    app = create_app(runtime=tiny_model)
    page = list(_walk(layout.page()))
    graphs = {c.id for c in page if type(c).__name__ == "Graph"}
    assert len(graphs) >= 20
    boxes = {getattr(c, "aria-describedby")[:-len("-text")]: c for c in page if getattr(c, "role", None) == "figure"}
    assert set(boxes) == graphs | {"token-chips"}
    outputs = " ".join(app.callback_map)
    for figure_id, box in boxes.items():
        assert getattr(box, "aria-label") and any(getattr(c, "id", None) == figure_id for c in _walk(box))
        assert any(getattr(c, "id", None) == f"{figure_id}-text" for c in _walk(box))
        button = next(c for c in _walk(box) if getattr(c, "id", None) == f"{figure_id}-csv")
        assert getattr(button, "aria-label") == f"Download the numbers of {getattr(box, 'aria-label')} as CSV"
        assert f"{figure_id}-text.children" in outputs and f"{figure_id}-download.data" in outputs


def test_tokens_are_described_and_listed_in_their_csv(client, tiny_model, seq):
    r = client.call("token-chips.children", {f"{ids.SEQUENCE}.data": seq, f"{ids.VIEW}.value": "tokens",
                                             "token-page.value": 0})
    tokens = tiny_model.tokenizer.tokens(seq["ids"])
    named = "; ".join(f"“{t.text}” (id {t.id})" for t in tokens)
    assert r.value("token-chips-text", "children") == f"Tokens 0–5 of 6 (␣ marks a space): {named}."
    sent = client.call("token-chips-download.data", {"token-chips-csv.n_clicks": 1},
                       state={f"{ids.SEQUENCE}.data": {**seq, "n_prompt": 4}}).value("token-chips-download", "data")
    rows = parse(sent["content"])
    assert rows[0] == ["position", "id", "token", "bytes", "generated"] and len(rows) == 7
    assert rows[2] == ["1", str(tokens[1].id), tokens[1].text, " ".join(f"{b:02X}" for b in tokens[1].bytes), "False"]
    assert rows[6][4] == "True" and sent["filename"] == "tokens.csv"


def test_the_class_answers_chart_is_described_in_the_lesson_panel():
    from components import figure_text
    from components.lesson import panel
    question = {"choices": ["cat", "dog", "car"], "answer": 1, "explanation": "…", "model_values": [0.2, 0.7, 0.1],
                "model_label": "the model's probability"}
    assert figure_text.class_answers_text(question, [1, 3, 0]) == (
        "The class (4 answers): “cat” 1 (25%); “dog” 3 (75%); “car” 0 (0%). Beside it, the model's probability: "
        "“cat” 0.2; "
        "“dog” 0.7; “car” 0.1. The model's answer: “dog”.")
    box = panel.reveal_children(question, 0, [1, 3, 0])[-1]
    assert box.role == "figure" and getattr(box, "aria-describedby") == box.children[1].id
    assert box.children[1].children == figure_text.class_answers_text(question, [1, 3, 0])


def test_a_junk_figure_sent_by_hand_gets_a_message_not_a_crash(client):
    junk = {"data": [{"type": "heatmap", "z": {"dtype": "f4", "bdata": "AAAAAA==", "shape": "3,3"}}]}
    r = client.call("embedding-norms-download.data", {"embedding-norms-csv.n_clicks": 1},
                    state={"embedding-norms.figure": junk})
    assert r.status == 200 and "could not be read as a table" in json.dumps(r.body)
    assert r.value("embedding-norms-download", "data") is None
