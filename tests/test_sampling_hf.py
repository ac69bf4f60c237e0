"""The sampling pipeline against `transformers`' logits processors, plus its edge cases and its draws."""
import itertools

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)

from model_runtime.sampling import (SamplingParams, draw, make_generator, next_token_probs, sampling_record,
                                    top_k_mask, top_p_mask)

V = 50257


def hf_probs(logits, temperature, top_k, top_p):
    """HF's warpers in generate()'s order; top_k 0 means the warper is not added at all."""
    scores = logits[None].clone()
    ids = torch.zeros((1, 1), dtype=torch.long)
    scores = TemperatureLogitsWarper(temperature)(ids, scores)
    if top_k:
        scores = TopKLogitsWarper(top_k)(ids, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(ids, scores)
    return scores[0].softmax(-1)


@pytest.fixture(scope="module")
def random_logits():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(V, generator=g) * 3,               # GPT-2-like spread
            torch.randn(10, generator=g),                    # small vocabulary
            torch.tensor([2.0, 2.0, 2.0, 1.0, 1.0, 0.5, -1.0, -1.0, 3.0, 3.0])]  # ties


@pytest.mark.parametrize("temperature, top_k, top_p", itertools.product(
    [0.05, 0.7, 1.0, 1.5, 2.0, 10.0], [0, 1, 2, 5, 50, V, 10**9], [0.01, 0.3, 0.9, 0.999, 1.0]))
def test_filtered_distribution_equals_transformers(random_logits, temperature, top_k, top_p):
    for logits in random_logits:
        ours = sampling_record(logits, SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p))
        theirs = hf_probs(logits, temperature, min(top_k, logits.numel()), top_p)
        assert torch.equal(ours.probs > 0, theirs > 0)  # the same kept set
        assert torch.allclose(ours.probs, theirs, atol=1e-6)
        assert torch.allclose(next_token_probs(logits, temperature, top_k, top_p), theirs, atol=1e-6)


def test_repetition_penalty_equals_transformers(random_logits):
    logits = random_logits[0]
    previous = [5, 17, 17, 400, 50256, 5]
    for penalty in (0.5, 1.0, 1.3, 2.0):
        theirs = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([previous]), logits[None].clone())[0]
        ours = sampling_record(logits, SamplingParams(repetition_penalty=penalty), previous_ids=previous).penalized
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_presence_and_frequency_penalties():
    logits = torch.zeros(6)
    record = sampling_record(logits, SamplingParams(presence_penalty=0.5, frequency_penalty=0.25),
                             previous_ids=[1, 1, 1, 4])
    assert torch.allclose(record.penalized, torch.tensor([0, -1.25, 0, 0, -0.75, 0]))


def test_greedy_is_one_hot_at_the_first_argmax():
    logits = torch.tensor([1.0, 3.0, 3.0, -2.0])
    record = draw(sampling_record(logits, SamplingParams(temperature=0)))
    assert record.token == 1 and record.rank == 0 and torch.equal(record.probs, torch.tensor([0.0, 1, 0, 0]))


@pytest.mark.parametrize("logits", [torch.full((50,), 1.0), torch.tensor([50.0] + [0.0] * 9),
                                    torch.tensor([float("-inf")] * 5 + [0.3, 0.2])])
@pytest.mark.parametrize("top_k, top_p", [(1, 1.0), (0, 1e-9), (3, 1e-6)])
def test_at_least_one_token_is_kept(logits, top_k, top_p):
    record = sampling_record(logits, SamplingParams(top_k=top_k, top_p=top_p))
    assert record.kept_top_p.sum() >= 1 and abs(float(record.probs.sum()) - 1) < 1e-6
    assert torch.isfinite(record.probs).all()


def test_masks_keep_ties_and_respect_top_k():
    scores = torch.tensor([3.0, 1.0, 3.0, 2.0, 2.0])
    assert top_k_mask(scores, 3).tolist() == [True, False, True, True, True]  # ties at the k-th value kept
    assert top_k_mask(scores, 0).all() and top_k_mask(scores, 10).all()
    assert top_p_mask(scores, 1.0).all()


def test_seeded_draws_repeat_and_seeds_differ():
    record = sampling_record(torch.zeros(1000), SamplingParams())
    first = [draw(record, make_generator(7)).token for _ in range(3)]
    assert len(set(first)) == 1
    g1, g2 = make_generator(1), make_generator(2)
    assert [draw(record, g1).token for _ in range(20)] != [draw(record, g2).token for _ in range(20)]


def test_sampling_frequencies_pass_chi_square():
    probs = torch.tensor([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.03, 0.02, 0.0])
    logits = probs.clamp_min(1e-12).log()
    logits[-1] = float("-inf")
    record = sampling_record(logits, SamplingParams(top_k=8))  # the two least likely are cut off
    generator = make_generator(1234)
    counts = np.bincount([draw(record, generator).token for _ in range(20_000)], minlength=10)
    assert counts[8] == counts[9] == 0
    expected = record.probs[:8].double().numpy()
    assert chisquare(counts[:8], expected / expected.sum() * counts[:8].sum()).pvalue > 0.001


def test_record_top_rows_agree_with_the_tensors():
    logits = torch.tensor([0.5, 2.0, -1.0, 1.0])
    record = draw(sampling_record(logits, SamplingParams(temperature=0.5, top_k=2, seed=0)), make_generator(0))
    rows = record.top(4)
    assert [r["id"] for r in rows] == [1, 3, 0, 2]
    assert [r["rank"] for r in rows] == [0, 1, 2, 3]
    assert [r["kept_top_k"] for r in rows] == [True, True, False, False]
    assert abs(sum(r["prob"] for r in rows) - 1) < 1e-6 and record.token in (1, 3)


@pytest.mark.parametrize("values, message", [
    ({"temperature": float("nan")}, "finite"), ({"temperature": float("inf")}, "finite"),
    ({"temperature": -1}, "at least 0"), ({"temperature": "abc"}, "number"), ({"top_k": -1}, "at least 0"),
    ({"top_k": 2.5}, "whole"), ({"top_p": 0}, "above 0"), ({"top_p": 2}, "at most 1"), ({"seed": -3}, "at least 0"),
    ({"seed": 2**40}, "at most"), ({"temperature": True}, "number"), ({"colour": 1}, "unknown"),
])
def test_checked_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        SamplingParams.checked(**values)


def test_checked_accepts_form_values():
    params = SamplingParams.checked(temperature="0.7", top_k=10**9, top_p="0.9", seed="12")
    assert (params.temperature, params.top_k, params.top_p, params.seed) == (0.7, 10**9, 0.9, 12)
    assert sampling_record(torch.randn(100), params).kept_top_k.all()  # a huge top-k is off
