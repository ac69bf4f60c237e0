"""Figures that stay readable in a classroom, without a browser: long prompts are shown in windows of bounded
height, and the labels that used to collide or mislead at a desk (tests/test_browser_room.py checks the drawn
page at four screen sizes)."""
import numpy as np
import pytest
import torch

from app import create_app
from components import ablation, heads, ids, logit_lens, mlp, output, residual, tokens
from components.common import ROWS_MAX_PX, WINDOW_ROWS, axis_labels, token_window, window_note
from model_runtime.sampling import SamplingParams, draw, make_generator, sampling_record


@pytest.fixture(scope="module")
def client_long(long_context_model):
    return create_app(runtime=long_context_model).server.test_client()


def test_token_windows_stay_inside_the_prompt():
    assert token_window(10, 5) == (0, 10)
    assert token_window(1024, 1023) == (1024 - WINDOW_ROWS, 1024)
    assert token_window(1024, 0) == (0, WINDOW_ROWS)
    assert token_window(1024, 500) == (500 - WINDOW_ROWS // 2, 500 + WINDOW_ROWS // 2)
    assert token_window(1024, 1023, 12) == (1012, 1024)
    assert window_note(0, 10, 10) == "" and window_note(896, 1024, 1024) == " (positions 896–1,023 of 1,024 tokens)"


def test_per_token_charts_of_a_long_prompt_stay_within_a_screen(long_context_model):
    trace = long_context_model.trace(long_context_model.tokenizer.encode(" word" * 1024))
    labels = axis_labels(trace.tokens)
    start, stop = token_window(len(labels), 700)
    post = trace["blocks.1.mlp.hook_post"].numpy()[start:stop]
    heatmap = mlp.activation_heatmap_figure(post, mlp.most_active_neurons(post), labels[start:stop], "t")
    assert len(heatmap.data[0].y) == WINDOW_ROWS and heatmap.layout.height <= ROWS_MAX_PX + 140
    stages, norms = residual.stream_norms(trace)
    stream = residual.stream_figure(stages, norms[:, start:stop], labels[start:stop])
    assert len(stream.data[0].y) == WINDOW_ROWS and stream.layout.height <= ROWS_MAX_PX + 140
    names, stack = logit_lens.lens_stack(trace, *token_window(len(labels), 1023, logit_lens.MAX_POSITIONS))
    assert stack.shape[1] == logit_lens.MAX_POSITIONS
    assert torch.equal(stack[-1, -1], trace["blocks.1.hook_resid_post"][-1])


def test_probabilities_are_never_written_with_si_prefixes():
    result = {"base": np.array([0.5, 0.00015]), "ablated": np.array([0.4, 0.0002])}
    fig = ablation.comparison_figure(result, ["a", "b"])
    assert fig.layout.yaxis.tickformat == ".3~g"  # "0.00015", not Plotly's default "150μ"


def test_all_heads_numbers_fit_and_numberings_are_labelled():
    values = np.random.default_rng(0).random((12, 12)).astype(np.float32)
    assert heads.statistic_figure(values, "x", ".1%").data[0].texttemplate is None  # 144 values would crowd
    assert heads.statistic_figure(values[:4, :4], "x", ".1%").data[0].texttemplate == "%{z:.1%}"
    row = heads.statistics_table({k: values for k in heads.STATISTICS}, "first")[0]
    block, head = map(int, row["id"].split(","))
    assert row["head"] == f"block {block + 1}, head {head + 1}" and row["tl"] == f"L{block}H{head}"


def test_panel_titles_get_their_own_room_under_the_title(tiny_model):
    trace = tiny_model.trace("The cat sat")
    labels = axis_labels(trace.tokens)
    fig = mlp.contraction_figure(trace["blocks.0.hook_mlp_out"].numpy(), labels, 1)
    assert fig.layout.margin.t >= 50 + 26  # the title, then the panels' titles above them


def test_layernorm_legend_names_both_panels():
    rng = np.random.default_rng(0)
    fig = residual.layernorm_figure(rng.normal(size=64), rng.normal(size=64), 0.0, 1.0, "t")
    groups = {(t.type, t.legendgroup) for t in fig.data}
    assert groups == {(kind, when) for kind in ("scatter", "histogram")
                      for when in ("before LayerNorm", "after LayerNorm")}
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y > 1  # above both panels


def test_a_certain_choice_has_zero_bits_not_minus_zero(tiny_model):
    logits = tiny_model.trace("The cat", capture=False).logits[-1]
    record = draw(sampling_record(logits, SamplingParams(0.0, 0, 1.0, seed=0)), make_generator(0))
    drawn = {"id": record.token, "text": "x", "prob": 1.0, "rank": 0}
    text = str(output.summary(record, drawn, tiny_model.config.vocab_size))
    assert "-0.00" not in text and "0.00 bits after filtering" in text
    assert output.entropy_bits(np.array([1.0, 0.0])) == 0.0


def test_token_chips_come_a_page_at_a_time(client_long, long_context_model):
    from tests.test_views_tokens_embeddings import call
    token_ids = long_context_model.tokenizer.encode(" word" * 1024)
    sequence = {"ids": token_ids, "n_prompt": 1024}
    _, out = call(client_long, "token-chips", {ids.SEQUENCE: sequence, ids.VIEW: "tokens", "token-page": 7})
    chips = out["token-chips"]["children"]
    assert len(chips) == tokens.CHIPS_PER_PAGE and chips[0]["props"]["title"].startswith("position 896 ")
    assert len(out["token-page"]["options"]) == 8 and out["token-pager"]["style"] == {"display": "flex"}
    _, out = call(client_long, "token-chips", {ids.SEQUENCE: sequence, ids.VIEW: "tokens", "token-page": "junk"})
    assert out["token-chips"]["children"][0]["props"]["title"].startswith("position 0 ")
