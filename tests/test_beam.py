"""Beam search equals transformers' beam search token for token, and its step records describe the search.

Matched HF settings: `generate(input_ids, num_beams=n, num_return_sequences=n, do_sample=False,
max_new_tokens=m, length_penalty=lp, no_repeat_ngram_size=r, early_stopping=es, pad_token_id=<|endoftext|>)`,
everything else at GPT-2's defaults (eos_token_id 50256, no other logits processors). All n returned sequences
are compared, in order, with our n hypotheses (their lengths read from HF's beam_indices), and HF's
sequences_scores with our scores. For n = 1 `generate` runs greedy search, which our one-beam search must equal.

Weights: the tiny random GPT-2 of conftest, and a copy whose end-of-text row is rescaled (norm 2, about ten
times the others) so that texts end after a few tokens: length penalty, early stopping and the "can a running
beam still win" heuristic then decide the result."""
import json
import math

import pytest
import torch
import transformers

from model_runtime import load_gpt2
from model_runtime.beam import BeamResult
from model_runtime.tokenizer import EOT_ID

PROMPTS = ["The cat sat on the", "Data visualization empowers users to", "1, 2, 3,"]
SETTINGS = [  # (length_penalty, early_stopping, no_repeat_ngram_size)
    (1.0, False, 0),
    (2.0, True, 0),
    (0.5, "never", 2),
    (-1.0, False, 1),
]
MAX_NEW = 10


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def eos_heavy(tiny_hf, tmp_path_factory):
    """(HF model, our runtime) loaded from one saved folder whose <|endoftext|> row is rescaled."""
    folder = tmp_path_factory.mktemp("gpt2-tiny-eos")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tiny_hf[0])
    with torch.no_grad():
        row = hf.transformer.wte.weight[EOT_ID]  # tied: the output row too
        row.mul_(2.0 / row.norm())
    hf.save_pretrained(folder)
    return transformers.GPT2LMHeadModel.from_pretrained(folder).eval(), load_gpt2(str(folder), device="cpu")


@pytest.fixture(scope="module")
def plain(tiny_hf, tiny_model):
    return transformers.GPT2LMHeadModel.from_pretrained(tiny_hf[0]).eval(), tiny_model


def hf_hypotheses(hf, prompt, n, lp, es, ngram):
    out = hf.generate(torch.tensor([prompt]), num_beams=n, num_return_sequences=n, do_sample=False,
                      max_new_tokens=MAX_NEW, length_penalty=lp, early_stopping=es, no_repeat_ngram_size=ngram,
                      pad_token_id=EOT_ID, return_dict_in_generate=True, output_scores=True)
    P = len(prompt)
    if n == 1:  # greedy search: stops when its one sequence ends, no scores
        return [(out.sequences[0, P:].tolist(), None)]
    lengths = (out.beam_indices != -1).sum(1).tolist()
    return [(out.sequences[i, P:P + lengths[i]].tolist(), float(out.sequences_scores[i])) for i in range(n)]


def assert_same_as_hf(hf, model, prompt_text, n, lp, es, ngram) -> BeamResult:
    prompt = model.encode(prompt_text)
    ours = model.beam_search(prompt, num_beams=n, max_new_tokens=MAX_NEW, length_penalty=lp,
                             no_repeat_ngram_size=ngram, early_stopping=es)
    theirs = hf_hypotheses(hf, prompt, n, lp, es, ngram)
    assert [h.token_ids for h in ours.hypotheses] == [ids for ids, _ in theirs], (prompt_text, n, lp, es, ngram)
    for h, (_, score) in zip(ours.hypotheses, theirs):
        if score is not None:
            assert h.score == pytest.approx(score, abs=1e-4)
    return ours


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_equals_transformers_on_random_weights(plain, n):
    assert_same_as_hf(*plain, PROMPTS[1], n, *SETTINGS[0])
    assert_same_as_hf(*plain, PROMPTS[2], n, *SETTINGS[2])


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_equals_transformers_when_texts_end_early(eos_heavy, n):
    results = [assert_same_as_hf(*eos_heavy, prompt, n, *setting) for prompt in PROMPTS[:2] for setting in SETTINGS]
    # The weights do what they are for: texts end by <|endoftext|> before max_new_tokens.
    assert any(h.ended_by == "eos" and len(h.token_ids) < MAX_NEW for r in results for h in r.hypotheses)
    if n > 1:
        reasons = {r.stop_reason for r in results}
        assert {"no_improvement", "max_new_tokens"} <= reasons, reasons
        if n == 8:
            assert "early_stopping" in reasons


def test_scores_and_records(eos_heavy):
    _, model = eos_heavy
    n, lp = 4, 1.5
    prompt = model.encode(PROMPTS[0])
    result = model.beam_search(prompt, num_beams=n, max_new_tokens=MAX_NEW, length_penalty=lp)
    assert len(result.hypotheses) == n
    scores = [h.score for h in result.hypotheses]
    assert scores == sorted(scores, reverse=True)
    for h in result.hypotheses:
        # The log-prob of each hypothesis, recomputed by full forward passes; the score is its length-normalised form.
        logits = model.trace(prompt + h.token_ids, capture=False).logits
        logprobs = torch.log_softmax(logits[len(prompt) - 1:-1], dim=-1)
        total = float(logprobs.gather(1, torch.tensor(h.token_ids)[:, None]).sum())
        assert h.logprob == pytest.approx(total, abs=1e-3)
        assert h.score == pytest.approx(h.logprob / len(h.token_ids) ** lp, rel=1e-5)
        assert h.text == model.tokenizer.decode(h.token_ids)

    json.dumps(result.to_dict())  # plain data, for the page
    assert result.steps[0].beams == [{"token_ids": [], "score": 0.0}]
    for step in result.steps:
        cands = step.candidates
        assert len(cands) == 2 * n and [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
        for c in cands:
            beam = step.beams[c.parent]
            assert c.score == pytest.approx(beam["score"] + c.logprob, abs=1e-4)
            assert c.ended == (c.token_id == EOT_ID or len(beam["token_ids"]) + 1 == MAX_NEW)
        kept = [c for c in cands if c.status == "kept"]
        if step is not result.steps[-1]:
            # The n best that did not end go on, in order, as the next step's beams.
            assert [c.next_beam for c in kept] == list(range(n))
            assert kept == [c for c in cands if not c.ended][:n]
            following = result.steps[step.index + 1].beams
            assert [b["token_ids"] for b in following] == [step.beams[c.parent]["token_ids"] + [c.token_id]
                                                           for c in kept]
        assert all(c.ended for c in cands if c.status == "finished")
        assert all(h.score >= -1e8 for h in step.hypotheses)
    assert [h.token_ids for h in result.steps[-1].hypotheses] == [h.token_ids for h in result.hypotheses]


def test_time_limit_returns_the_running_beams(tiny_model):
    result = tiny_model.beam_search(PROMPTS[0], num_beams=3, max_new_tokens=50, max_seconds=0)
    assert result.stop_reason == "time_limit" and len(result.steps) == 1 and len(result.hypotheses) == 3
    assert all(h.ended_by == "time_limit" and len(h.token_ids) == 1 for h in result.hypotheses)


def test_width_one_is_greedy(tiny_model):
    greedy = tiny_model.generate(PROMPTS[1], max_new_tokens=8, temperature=0).run().new_ids
    beam = tiny_model.beam_search(PROMPTS[1], num_beams=1, max_new_tokens=8).best
    assert beam.token_ids == greedy


@pytest.mark.parametrize("bad", [dict(num_beams=0), dict(num_beams=9), dict(num_beams=2.0), dict(max_new_tokens=0),
                                 dict(length_penalty=math.nan), dict(no_repeat_ngram_size=-1),
                                 dict(early_stopping="yes"), dict(early_stopping=1)])
def test_bad_settings_are_refused(tiny_model, bad):
    with pytest.raises(ValueError):
        tiny_model.beam_search("Hello", **bad)
