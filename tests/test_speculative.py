"""Speculative decoding keeps the target's output: its greedy output exactly, and its sampling distribution
(chi-square tests over seeded runs with tiny models whose filtered distributions have 6 tokens)."""
import copy
import json

import pytest
import torch
from scipy import stats

from model_runtime import GPT2Config
from model_runtime.model import GPT
from model_runtime.runtime import GPT2Runtime
from model_runtime.sampling import SamplingParams, sampling_record
from model_runtime.speculative import measure_speedup
from model_runtime.tokenizer import get_tokenizer

PROMPT = "The cat sat on the"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def runtime(model):
    return GPT2Runtime(model, get_tokenizer(), pretrained=False, source="test", message="")


def perturbed(model, noise, seed=5):
    """A draft: the model's weights plus noise (noise x each matrix's std), so that it often agrees."""
    draft = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in draft.parameters():
            if p.dim() == 2:
                p.add_(torch.randn(p.shape, generator=g) * float(p.std()) * noise)
    return draft


@pytest.fixture(scope="module")
def drafts(tiny_model):
    unrelated = GPT(tiny_model.config).init_untrained(seed=7)
    return {"perturbed": runtime(perturbed(tiny_model.model, 0.5)), "unrelated": runtime(unrelated)}


@pytest.mark.parametrize("k", [1, 4, 8])
@pytest.mark.parametrize("which", ["perturbed", "unrelated"])
def test_temperature_zero_is_the_targets_greedy_output(tiny_model, drafts, k, which):
    greedy = tiny_model.generate(PROMPT, max_new_tokens=24, temperature=0).run().new_ids
    spec = tiny_model.speculative_generate(drafts[which], PROMPT, k=k, max_new_tokens=24, temperature=0)
    rounds = list(spec)
    assert spec.new_ids == greedy and spec.stop_reason == "max_new_tokens"
    assert sum((r.new_ids for r in rounds), []) == greedy
    for r in rounds:
        assert r.new_ids == r.proposed[:r.accepted] + [r.drawn] and r.accepted <= len(r.proposed) <= k
        assert (r.rejected is None) == (r.accepted == len(r.proposed))
    assert spec.acceptance_rate == sum(r.accepted for r in rounds) / sum(len(r.proposed) for r in rounds)
    if which == "perturbed":  # both paths taken: kept proposals and rejected ones
        assert 0 < spec.acceptance_rate < 1
    json.dumps([r.to_dict() for r in rounds])


# ------------------------------------------------------------------------------------------------------------
# Sampling: the output follows the target's filtered distribution, not the draft's

V, TOP_K, N_RUNS = 48, 6, 800
IDS = [5, 17, 30]
SAMPLING = dict(temperature=1.0, top_k=TOP_K)


@pytest.fixture(scope="module")
def small_pair():
    """Target and draft over a 48-token vocabulary; output rows scaled up so the 6 kept tokens have
    distinct probabilities, and the draft's differ from the target's (total variation ~0.2)."""
    cfg = GPT2Config(vocab_size=V, n_ctx=32, n_layer=1, n_head=2, d_model=16, d_mlp=64)
    target = GPT(cfg).init_untrained(seed=1)
    with torch.no_grad():
        target.wte.weight.mul_(8)
    return runtime(target), runtime(perturbed(target, 0.5))


def filtered(model, ids):
    return sampling_record(model.trace(ids, capture=False).logits[-1], SamplingParams(**SAMPLING)).probs


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """(statistic, degrees of freedom) of observed counts [V] against probs [V]; bins expected below 5 merged.
    A count where probs is 0 makes the statistic infinite."""
    n = float(counts.sum())
    if bool((counts[probs == 0] > 0).any()):
        return float("inf"), 1
    expected = n * probs
    big = expected >= 5
    observed_bins = torch.cat([counts[big], counts[~big].sum()[None]])
    expected_bins = torch.cat([expected[big], expected[~big].sum()[None]])
    keep = expected_bins > 0
    o, e = observed_bins[keep], expected_bins[keep]
    return float(((o - e) ** 2 / e).sum()), int(keep.sum()) - 1


def p_value(tests: list[tuple[float, int]]) -> float:
    """Independent chi-square tests pooled: statistics and degrees of freedom add."""
    return float(stats.chi2.sf(sum(s for s, _ in tests), sum(d for _, d in tests)))


@pytest.mark.parametrize("k", [1, 3])
def test_sampled_tokens_follow_the_target(small_pair, k):
    target, draft = small_pair
    first = torch.zeros(V)
    second: dict[int, torch.Tensor] = {}  # after an accepted draft token x: counts of the next token
    for seed in range(N_RUNS):
        rounds = list(target.speculative_generate(draft, IDS, k=k, max_new_tokens=k + 1, seed=seed, **SAMPLING))
        ids = sum((r.new_ids for r in rounds), [])
        first[ids[0]] += 1
        if rounds[0].accepted >= 1:  # for k = 1 the next token is the target's bonus token
            second.setdefault(ids[0], torch.zeros(V))[ids[1]] += 1

    p0, q0 = filtered(target, IDS), filtered(draft, IDS)
    assert float((p0 - q0).abs().sum()) / 2 > 0.1  # the test can tell them apart
    assert p_value([chi_square(first, p0)]) > 1e-3
    assert p_value([chi_square(first, q0)]) < 1e-6

    groups = {x: c for x, c in second.items() if c.sum() >= 40}
    assert sum(c.sum() for c in groups.values()) > N_RUNS / 3
    against_target = [chi_square(c, filtered(target, IDS + [x])) for x, c in groups.items()]
    against_draft = [chi_square(c, filtered(draft, IDS + [x])) for x, c in groups.items()]
    assert p_value(against_target) > 1e-3
    assert p_value(against_draft) < 1e-6


def test_rounds_and_limits(small_pair):
    target, draft = small_pair
    spec = target.speculative_generate(draft, IDS, k=4, max_new_tokens=10, seed=0, **SAMPLING)
    rounds = list(spec)
    assert len(spec.new_ids) == 10 and spec.stop_reason == "max_new_tokens"
    for r in rounds:
        assert all(0 <= a <= 1 for a in r.accept_probs) and r.draft_seconds >= 0 and r.target_seconds > 0
    timings = spec.timings
    assert timings["rounds"] == len(rounds) and timings["tokens_per_round"] == 10 / len(rounds)
    for bad in (dict(k=0), dict(k=9), dict(k=2.0), dict(max_new_tokens=0)):
        with pytest.raises(ValueError):
            target.speculative_generate(draft, IDS, **bad)


def test_measure_speedup(tiny_model, drafts):
    result = measure_speedup(tiny_model, drafts["perturbed"], PROMPT, k=4, max_new_tokens=16)
    assert result["same_tokens"] and result["new_tokens"] == 16
    assert result["speedup"] > 0 and 0 < result["acceptance_rate"] < 1
    assert result["speedup"] == pytest.approx(result["speculative_tokens_per_s"] / result["plain_tokens_per_s"])
