"""model_runtime.sampling against transformers' logits processors, plus its edge cases, draws and web checks.

All offline and CPU-only (a CUDA copy of the parity check runs where a GPU exists)."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)

from model_runtime import sampling
from model_runtime.sampling import (SamplingParams, SamplingRecord, apply_penalties, apply_temperature, draw,
                                    draw_token, make_generator, next_token_probs, sampling_record, top_k_mask,
                                    top_p_mask)

V = 50257
TEMPERATURES = [0.05, 0.7, 1.0, 1.5, 2.0, 10.0]
TOP_KS = [0, 1, 2, 5, 50, V, 10**9]
TOP_PS = [0.01, 0.3, 0.9, 0.999, 1.0]


def hf_scores(logits, temperature, top_k, top_p):
    """HF's warpers as generate() builds them: top_k 0 and top_p 1.0 add no warper; TopK gets
    max(top_k, min_tokens_to_keep) and clips it to the vocabulary itself."""
    ids = torch.zeros((1, 1), dtype=torch.long)
    scores = TemperatureLogitsWarper(float(temperature))(ids, logits[None].clone())
    if top_k:
        scores = TopKLogitsWarper(top_k)(ids, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(ids, scores)
    return scores[0]


@pytest.fixture(scope="module")
def logits_set():
    g = torch.Generator().manual_seed(0)
    gpt2_like = torch.randn(V, generator=g) * 3
    banned = gpt2_like.clone()
    banned[torch.randperm(V, generator=g)[:1000]] = float("-inf")  # e.g. bad-words: -inf entries
    banned[7] = 25.0                                                  # and one very peaked token
    return {
        "gpt2-like": gpt2_like,
        "-inf and peaked": banned,
        "small": torch.randn(10, generator=g),
        "small ties": torch.tensor([2.0, 2.0, 2.0, 1.0, 1.0, 0.5, -1.0, -1.0, 3.0, 3.0]),
    }


# ----------------------------------------------------------------------------------------------------------
# Parity with transformers

@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_filtered_distribution_and_kept_sets_equal_transformers(logits_set, temperature):
    for (name, logits), top_k, top_p in itertools.product(logits_set.items(), TOP_KS, TOP_PS):
        where = f"{name}, T={temperature}, top_k={top_k}, top_p={top_p}"
        theirs = hf_scores(logits, temperature, top_k, top_p)
        record = sampling_record(logits, SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p))
        assert torch.equal(record.kept_top_p, theirs > float("-inf")), where
        assert torch.allclose(record.probs, theirs.softmax(-1), atol=1e-6, rtol=0), where
        assert torch.equal(record.probs, next_token_probs(logits, temperature, top_k, top_p)), where
        # the stages in between, and their invariants
        assert torch.equal(record.scaled, logits / temperature), where
        assert not (record.kept_top_p & ~record.kept_top_k).any(), where
        assert torch.equal(record.probs > 0, record.kept_top_p & (record.probs > 0)), where
        assert record.probs.dtype == torch.float32, where
        assert abs(float(record.probs.double().sum()) - 1) < 1e-4, where  # float32 softmax, as HF's
        if top_p < 1.0:  # HF drops at most 1 - top_p of the mass top-p looked at
            assert record.top_p_cumulative_mass >= top_p - 1e-5, where


def test_top_k_mask_equals_transformers_with_ties():
    scores = torch.tensor([3.0, 1.0, 3.0, 2.0, 2.0, float("-inf")])
    assert top_k_mask(scores, 3).tolist() == [True, False, True, True, True, False]  # ties at the k-th kept
    assert top_k_mask(scores, 1).tolist() == [True, False, True, False, False, False]
    for k in (0, 6, 100):  # off; -inf is never "kept"
        assert top_k_mask(scores, k).tolist() == [True] * 5 + [False]
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        x = torch.randint(-3, 4, (int(torch.randint(2, 200, (), generator=g)),), generator=g).float()
        k = int(torch.randint(1, x.numel() + 1, (), generator=g))
        theirs = TopKLogitsWarper(k)(None, x[None].clone())[0]
        assert torch.equal(top_k_mask(x, k), theirs > float("-inf"))


def test_top_p_mask_equals_transformers_where_ties_straddle_the_cut(monkeypatch):
    """Integer-valued scores tie a lot, so tied tokens often sit on both sides of the top-p cut; then HF's
    kept set depends on torch.sort's tie order and the fast CPU path must hand over to HF's own arithmetic.
    The fast path must agree with the plain sort path wherever it answers."""
    g = torch.Generator().manual_seed(2)
    cases = []
    for _ in range(150):
        n = int(torch.randint(2, 400, (), generator=g))
        x = torch.randint(-4, 4, (n,), generator=g).float() * float(torch.rand((), generator=g) * 3 + 0.1)
        cases.append((x, float(torch.rand((), generator=g)) * 0.999 + 0.001))
    x = torch.randn(V, generator=g).round()
    cases += [(x, p) for p in TOP_PS[:-1]]
    ours = [top_p_mask(x, p) for x, p in cases]
    for (x, p), mask in zip(cases, ours):
        theirs = TopPLogitsWarper(p)(None, x[None].clone())[0]
        assert torch.equal(mask, theirs > float("-inf")), (x.tolist()[:20], p)
    monkeypatch.setattr(sampling, "_top_p_mask_by_threshold", lambda scores, top_p: None)
    assert all(torch.equal(top_p_mask(x, p), mask) for (x, p), mask in zip(cases, ours))


def test_repetition_penalty_equals_transformers(logits_set):
    logits = logits_set["gpt2-like"].clone()
    logits[17], logits[400] = 0.0, -2.5  # zero and negative logits among the seen ones
    previous = [5, 17, 17, 400, 50256, 5, 5]
    for penalty in (0.5, 1.0, 1.3, 2.0):
        theirs = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([previous]), logits[None].clone())[0]
        assert torch.equal(apply_penalties(logits, previous, repetition_penalty=penalty), theirs)
        record = sampling_record(logits, SamplingParams(repetition_penalty=penalty), previous_ids=previous)
        assert torch.equal(record.penalized, theirs) and torch.equal(record.logits, logits)
    # ids given as a tensor or an array work the same
    as_tensor = apply_penalties(logits, torch.tensor(previous), repetition_penalty=1.3)
    assert torch.equal(as_tensor, apply_penalties(logits, np.array(previous), repetition_penalty=1.3))


def test_presence_and_frequency_penalties_by_hand():
    logits = torch.tensor([1.0, 2.0, -1.0, 0.5, -3.0, 4.0])
    previous = [1, 1, 1, 4, 5]
    # repetition first (HF: positive / 2, negative * 2), then OpenAI's: - presence * seen - frequency * count
    expected = torch.tensor([1.0, 2.0 / 2 - 0.5 - 3 * 0.25, -1.0, 0.5, -3.0 * 2 - 0.5 - 0.25, 4.0 / 2 - 0.5 - 0.25])
    ours = apply_penalties(logits, previous, repetition_penalty=2.0, presence_penalty=0.5, frequency_penalty=0.25)
    assert torch.allclose(ours, expected, atol=1e-6)
    only_additive = apply_penalties(torch.zeros(6), previous, presence_penalty=0.5, frequency_penalty=0.25)
    assert torch.allclose(only_additive, torch.tensor([0, -1.25, 0, 0, -0.75, -0.75]))
    assert torch.equal(apply_penalties(logits, []), logits) and torch.equal(apply_penalties(logits, None), logits)
    with pytest.raises(ValueError, match="token ids from 0 to 5"):
        apply_penalties(logits, [1, 6], presence_penalty=1.0)
    with pytest.raises(ValueError, match="token ids"):
        apply_penalties(logits, [-1], repetition_penalty=1.2)


# ----------------------------------------------------------------------------------------------------------
# Greedy and the edge cases

def test_greedy_is_one_hot_at_the_first_argmax_and_ignores_the_generator():
    logits = torch.tensor([1.0, 3.0, 3.0, -2.0, 3.0])
    generator = make_generator(5)
    state = generator.get_state()
    record = draw(sampling_record(logits, SamplingParams(temperature=0, top_k=3, top_p=0.5)), generator)
    assert record.token == 1 and record.rank == 0
    assert torch.equal(record.probs, torch.tensor([0.0, 1, 0, 0, 0]))
    assert torch.equal(record.scaled, record.penalized) and record.kept_top_p.sum() == 1
    assert torch.equal(generator.get_state(), state)  # greedy draws nothing
    assert torch.equal(next_token_probs(logits, 0.0), record.probs)
    # the penalties come before the argmax
    penalised = sampling_record(logits, SamplingParams(temperature=0, repetition_penalty=2.0), previous_ids=[1])
    assert penalised.with_draw(None).token == 2


@pytest.mark.parametrize("logits", [torch.full((50,), 1.0), torch.tensor([60.0] + [0.0] * 9),
                                    torch.tensor([float("-inf")] * 5 + [0.3, 0.2]),
                                    torch.tensor([float("-inf")] * 9 + [-1e4])],
                         ids=["flat", "peaked", "-inf", "one finite"])
@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 1, 1.0), (1.0, 0, 1e-9), (0.05, 3, 1e-6),
                                                        (10.0, 2, 0.01), (0.7, 0, 1.0)])
def test_at_least_one_token_is_always_kept(logits, temperature, top_k, top_p):
    record = sampling_record(logits, SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p))
    assert record.kept_top_p.sum() >= 1 and abs(float(record.probs.sum()) - 1) < 1e-6
    assert torch.isfinite(record.probs).all() and not record.kept_top_p[logits == float("-inf")].any()
    assert record.kept_top_p[record.with_draw(make_generator(0)).token]


@pytest.mark.parametrize("bad", [torch.tensor([0.0, float("nan")]), torch.tensor([0.0, float("inf")]),
                                 torch.full((4,), float("-inf")), torch.zeros(0), torch.zeros(2, 3)])
def test_logits_without_a_distribution_are_refused(bad):
    with pytest.raises(ValueError, match="logits"):
        sampling_record(bad, SamplingParams())


def test_dtypes_and_devices():
    logits = torch.randn(100, dtype=torch.float64)
    record = sampling_record(logits, SamplingParams(temperature=0.7, top_p=0.9))
    assert all(t.dtype == torch.float32 for t in (record.logits, record.penalized, record.scaled, record.probs))
    assert torch.allclose(record.probs, sampling_record(logits.half(), record.params).probs, atol=2e-3)
    assert apply_temperature(logits, 2.0).dtype == torch.float32
    with pytest.raises(ValueError, match="greedy"):
        apply_temperature(logits, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_cuda_matches_cpu(logits_set):
    for logits, (temperature, top_k, top_p) in itertools.product(
            logits_set.values(), [(0.7, 0, 0.9), (1.5, 50, 0.3), (1.0, 0, 1.0), (0.05, 5, 0.999)]):
        params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, seed=0)
        on_gpu = sampling_record(logits.cuda(), params, previous_ids=[1, 2, 2])
        assert on_gpu.probs.is_cuda and on_gpu.kept_top_p.is_cuda
        theirs = hf_scores(logits.cuda(), temperature, top_k, top_p)
        assert torch.equal(on_gpu.kept_top_p, theirs > float("-inf"))
        assert on_gpu.with_draw(make_generator(0, "cuda")).token is not None
        assert on_gpu.with_draw(make_generator(0)).token is not None  # a CPU generator works too


# ----------------------------------------------------------------------------------------------------------
# Draws

def test_seeded_draws_repeat_and_seeds_differ():
    record = sampling_record(torch.randn(1000, generator=torch.Generator().manual_seed(3)) * 0.1, SamplingParams())
    first = [draw(record, make_generator(7)).token for _ in range(3)]
    assert len(set(first)) == 1
    g1, g1_again, g2 = make_generator(1), make_generator(1), make_generator(2)
    run1 = [record.with_draw(g1).token for _ in range(20)]
    assert run1 == [draw_token(record.probs, g1_again) for _ in range(20)]  # one generator, one stream
    assert run1 != [draw(record, g2).token for _ in range(20)]
    unseeded = [draw(record, make_generator(None)).token for _ in range(20)]
    assert len(set(unseeded)) > 1


def test_draw_fills_token_and_rank_without_touching_the_record():
    logits = torch.tensor([0.5, 2.0, -1.0, 1.0, 1.0])
    record = sampling_record(logits, SamplingParams(top_k=3))
    assert record.token is None and record.rank is None
    drawn = draw(record, make_generator(0))
    assert record.token is None and drawn.token in (1, 3, 4)
    assert drawn.rank == {1: 0, 3: 1, 4: 1}[drawn.token]  # tied logits share a rank
    assert record.with_token(4).rank == 1 and record.with_token(2).rank == 4
    with pytest.raises(TypeError, match="draw_token"):
        draw(record.probs, None)


def test_sampling_frequencies_pass_chi_square():
    probs = torch.tensor([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.03, 0.02, 0.0])
    logits = probs.clamp_min(1e-12).log()
    logits[-1] = float("-inf")
    record = sampling_record(logits, SamplingParams(top_k=8))  # the two least likely are cut off
    assert record.kept_top_p.tolist() == [True] * 8 + [False] * 2
    generator = make_generator(1234)
    counts = np.bincount([draw(record, generator).token for _ in range(20_000)], minlength=10)
    assert counts[8] == counts[9] == 0  # filtered tokens never appear
    expected = record.probs[:8].double().numpy()
    assert np.allclose(expected, probs[:8].numpy() / 0.98, atol=1e-6)  # renormalised over the 8 kept
    assert chisquare(counts[:8], expected / expected.sum() * counts.sum()).pvalue > 0.001


# ----------------------------------------------------------------------------------------------------------
# The record, for display

def test_record_top_rows_agree_with_the_tensors():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(V, generator=g) * 3
    logits[100], logits[200] = 20.0, 20.0  # a tie at the top: by id
    previous = [100, 5, 5]
    record = draw(sampling_record(logits, SamplingParams(0.8, 40, 0.95, repetition_penalty=1.0,
                                                         presence_penalty=0.1), previous), make_generator(0))
    rows = record.top(60)
    expected_ids = torch.sort(record.probs_before, descending=True, stable=True).indices[:60].tolist()
    assert [r["id"] for r in rows] == expected_ids and rows[0]["id"] == 200
    for r in rows:
        i = r["id"]
        assert r["logit"] == float(record.logits[i]) and r["scaled"] == float(record.scaled[i])
        assert r["prob_before"] == float(record.probs_before[i]) and r["prob"] == float(record.probs[i])
        assert r["kept_top_k"] == bool(record.kept_top_k[i]) and r["kept_top_p"] == bool(record.kept_top_p[i])
        assert r["rank"] == int((record.logits > record.logits[i]).sum()) == record.rank_of(i)
        assert r == record.row(i)
    assert sum(r["kept_top_k"] for r in rows) == int(record.kept_top_k.sum()) == 40
    assert abs(sum(r["prob"] for r in rows) - 1) < 1e-5  # everything kept is in the top 60
    assert record.kept_top_p[record.token] and record.rank == record.rank_of(record.token)
    assert record.top(0) == [] and len(record.top(10**9)) == V


def test_record_top_orders_underflowed_probabilities_by_logit_then_id():
    logits = torch.tensor([0.0, 50.0, 1.0, 3.0, 1.0, 2.0])
    record = sampling_record(logits, SamplingParams(temperature=0.05))  # all but token 1 underflow to 0
    assert record.probs_before.tolist() == [0, 1, 0, 0, 0, 0]
    assert [r["id"] for r in record.top(6)] == [1, 3, 5, 2, 4, 0]
    flat = sampling_record(torch.zeros(7), SamplingParams())
    assert [r["id"] for r in flat.top(4)] == [0, 1, 2, 3] and [r["rank"] for r in flat.top(3)] == [0, 0, 0]


def test_top_p_mass_is_what_top_p_looked_at():
    logits = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.05, 0.05]))
    record = sampling_record(logits, SamplingParams(top_k=3, top_p=0.6))
    # top-k leaves 0.4, 0.3, 0.2 (renormalised: 4/9, 3/9, 2/9); top-p 0.6 keeps 4/9 + 3/9
    assert record.kept_top_p.tolist() == [True, True, False, False, False]
    assert math.isclose(record.top_p_cumulative_mass, 7 / 9, abs_tol=1e-6)
    assert torch.allclose(record.probs, torch.tensor([4 / 7, 3 / 7, 0, 0, 0]), atol=1e-6)
    assert sampling_record(logits, SamplingParams()).top_p_cumulative_mass == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------------
# Values from a web page

@pytest.mark.parametrize("values, message", [
    ({"temperature": float("nan")}, "finite"), ({"temperature": "inf"}, "finite"),
    ({"temperature": float("-inf")}, "finite"), ({"temperature": -1}, "at least 0"),
    ({"temperature": "abc"}, "must be a number"), ({"temperature": 101}, "at most 100"),
    ({"temperature": 1e-5}, "0 \\(greedy\\) or at least 0.001"), ({"temperature": True}, "must be a number"),
    ({"temperature": None}, "must be a number"), ({"temperature": [1]}, "must be a number"),
    ({"top_k": -1}, "top_k must be at least 0"), ({"top_k": 2.5}, "whole number"), ({"top_k": "5.5"}, "whole"),
    ({"top_k": "1e400"}, "finite"), ({"top_p": 0}, "top_p must be above 0"), ({"top_p": 2}, "at most 1"),
    ({"top_p": "nan"}, "finite"), ({"top_p": -0.5}, "above 0"),
    ({"repetition_penalty": 0}, "at least 0.01"), ({"repetition_penalty": 11}, "at most 10"),
    ({"presence_penalty": -3}, "at least -2"), ({"frequency_penalty": 2.5}, "at most 2"),
    ({"seed": -3}, "at least 0"), ({"seed": 2**40}, "at most 4294967295; got 1099511627776"), ({"seed": 1.5}, "whole"),
    ({"seed": "x"}, "seed must be a number"), ({"colour": 1}, "unknown sampling setting"),
])
def test_checked_rejects_bad_values_with_a_message(values, message):
    with pytest.raises(ValueError, match=message):
        SamplingParams.checked(**values)


def test_checked_accepts_form_values():
    params = SamplingParams.checked(temperature="0.7", top_k=10**9, top_p=" 0.9 ", seed="12",
                                    repetition_penalty="1.2", presence_penalty="-0.5", frequency_penalty=1)
    assert params == SamplingParams(0.7, 10**9, 0.9, 1.2, -0.5, 1.0, 12)
    assert isinstance(params.top_k, int) and isinstance(params.seed, int)
    assert isinstance(params.frequency_penalty, float)
    assert sampling_record(torch.randn(100), params).kept_top_k.all()  # a huge top_k is off
    assert SamplingParams.checked() == SamplingParams()
    assert SamplingParams.checked(temperature="0", top_k="40.0", seed=None) == SamplingParams(0.0, 40)
    assert SamplingParams.checked(seed=2**32 - 1, top_k=10**30).seed == 2**32 - 1


@pytest.mark.parametrize("values", [{"temperature": -0.1}, {"temperature": float("nan")}, {"top_k": -2},
                                    {"top_p": 0.0}, {"top_p": 1.5}, {"repetition_penalty": 0.0},
                                    {"presence_penalty": float("inf")}])
def test_direct_construction_refuses_what_would_break_the_pipeline(values):
    with pytest.raises(ValueError):
        SamplingParams(**values)


def test_public_api():
    for name in ("SamplingParams", "SamplingRecord", "apply_penalties", "apply_temperature", "top_k_mask",
                 "top_p_mask", "next_token_probs", "sampling_record", "draw", "draw_token", "make_generator"):
        assert hasattr(sampling, name)
    assert isinstance(sampling_record(torch.zeros(3), SamplingParams()), SamplingRecord)
