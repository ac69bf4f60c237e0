"""The generation loop: KV-cached steps equal full forwards, seeds repeat, greedy is argmax, stops are right."""
import pytest
import torch

from model_runtime import GPT2Config
from model_runtime.model import GPT
from model_runtime.runtime import GPT2Runtime
from model_runtime.tokenizer import EOT_ID, get_tokenizer

PROMPT = "Data visualization empowers users to"


def assert_cache_matches_full_forward(model, steps, prompt_ids):
    ids = list(prompt_ids)
    for step in steps:
        full = model.trace(ids, capture=False).logits[-1]
        assert (step.logits - full).abs().max() <= 1e-4, step.index
        ids.append(step.token_id)


@pytest.mark.parametrize("fixture", ["tiny_model", "full_model"])
def test_kv_cache_steps_equal_full_forward(request, fixture):
    model = request.getfixturevalue(fixture)
    gen = model.generate(PROMPT, max_new_tokens=8, temperature=1.0, seed=3)
    steps = list(gen)
    assert len(steps) == 8 and gen.stop_reason == "max_new_tokens" == steps[-1].stop_reason
    assert_cache_matches_full_forward(model, steps, gen.prompt_ids)
    # The cache grows by one position per step: heads x tokens x 64 per layer, keys and values.
    cfg = model.config
    for step in steps:
        assert step.cache_len == len(gen.prompt_ids) + step.index
        assert step.cache_bytes == 2 * cfg.n_layer * cfg.n_head * step.cache_len * cfg.d_head * 4


def test_without_cache_gives_the_same_tokens(tiny_model):
    cached = tiny_model.generate(PROMPT, max_new_tokens=6, seed=5).run()
    plain = tiny_model.generate(PROMPT, max_new_tokens=6, seed=5, use_cache=False).run()
    assert cached.new_ids == plain.new_ids
    assert plain.kv_cache_bytes == 0 and cached.kv_cache_bytes > 0


def test_seeded_generation_repeats(tiny_model):
    runs = [tiny_model.generate(PROMPT, max_new_tokens=10, temperature=1.3, top_p=0.95, seed=42).run().new_ids
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = tiny_model.generate(PROMPT, max_new_tokens=10, temperature=1.3, top_p=0.95, seed=43).run().new_ids
    assert other != runs[0]  # random weights are near-uniform over 50,257 tokens: a collision is hopeless


def test_greedy_is_argmax(tiny_model):
    for step in tiny_model.generate(PROMPT, max_new_tokens=5, temperature=0):
        assert step.token_id == int(step.logits.argmax())
        assert step.sampling.rank == 0 and step.sampling.probs[step.token_id] == 1


def test_step_records_show_the_pipeline(tiny_model):
    step = next(iter(tiny_model.generate(PROMPT, max_new_tokens=1, temperature=0.7, top_k=20, top_p=0.9, seed=0)))
    rec = step.sampling
    assert rec.kept_top_k.sum() == 20 and rec.kept_top_p.sum() <= 20
    assert rec.kept_top_p[step.token_id] and abs(float(rec.probs.sum()) - 1) < 1e-5
    assert step.text == get_tokenizer().token(step.token_id).text


def test_captures_per_step(tiny_model):
    steps = list(tiny_model.generate(PROMPT, max_new_tokens=3, seed=0, capture=["blocks.*.attn.hook_pattern"]))
    H = tiny_model.config.n_head
    assert steps[0].captures["blocks.0.attn.hook_pattern"].shape == (H, 6, 6)  # the prefill
    assert steps[2].captures["blocks.1.attn.hook_pattern"].shape == (H, 1, 8)  # the new token over 8 positions
    assert torch.allclose(steps[2].captures["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(H, 1))


def eos_model():
    """A tiny model whose greedy choice is always <|endoftext|>."""
    cfg = GPT2Config(n_layer=1, n_head=2, d_model=16, d_mlp=64, n_ctx=32)
    model = GPT(cfg).init_untrained()
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.wte.weight[EOT_ID] = 10.0
    return GPT2Runtime(model, get_tokenizer(), pretrained=False, source="test", message="")


def test_stop_reasons(tiny_model):
    steps = list(eos_model().generate("Hi", max_new_tokens=10, temperature=0))
    assert len(steps) == 1 and steps[0].token_id == EOT_ID and steps[0].stop_reason == "eos"

    sampled = tiny_model.generate(PROMPT, max_new_tokens=6, seed=7).run()
    stop = tiny_model.tokenizer.decode(sampled.new_ids[2:4])
    first = next(n for n in range(1, 7) if stop in tiny_model.tokenizer.decode(sampled.new_ids[:n]))
    stopped = tiny_model.generate(PROMPT, max_new_tokens=6, seed=7, stop=["never appears", stop]).run()
    assert stopped.stop_reason == "stop_sequence" and stopped.new_ids == sampled.new_ids[:first]

    n_ctx = tiny_model.config.n_ctx
    near_full = tiny_model.generate(list(range(n_ctx - 2)), max_new_tokens=10, seed=0).run()
    assert near_full.stop_reason == "context_full" and len(near_full.new_ids) == 2
    full = tiny_model.generate(list(range(n_ctx)), max_new_tokens=10, seed=0).run()
    assert full.stop_reason == "context_full" and full.new_ids == []

    gen = tiny_model.generate(PROMPT, max_new_tokens=50, seed=0)
    for step in gen:
        if step.index == 1:
            gen.cancel()
    assert gen.stop_reason == "cancelled" and len(gen.new_ids) == 2

    slow = tiny_model.generate(PROMPT, max_new_tokens=50, seed=0, max_seconds=0).run()
    assert slow.stop_reason == "time_limit" and len(slow.new_ids) == 1


def test_timings(tiny_model):
    gen = tiny_model.generate(PROMPT, max_new_tokens=4, seed=0).run()
    t = gen.timings
    assert t["new_tokens"] == 4 and t["ttft_s"] > 0 and t["per_token_s"] > 0 and t["tokens_per_s"] > 0
    assert t["kv_cache_bytes"] == gen.kv_cache_bytes
