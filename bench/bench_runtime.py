"""Runtime benchmark: forward with and without captures, decode speed against `transformers`, KV cache vs none,
bfloat16 error. Prints a table and ends with one JSON line.

    python bench/bench_runtime.py                 # full-size GPT-2 with random weights (same speed as trained)
    python bench/bench_runtime.py --model gpt2    # real weights from the HF cache
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.models import model_source  # noqa: E402
from model_runtime import load_gpt2  # noqa: E402


def best_ms(fn, repeat: int) -> float:
    """Best of `repeat` runs after a warm-up: the least disturbed by anything else on a shared 2-core machine."""
    fn()  # warm-up: first calls allocate
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times)


def hf_reference(folder: str | None, device: str):
    """`transformers`' GPT-2 on the same weights (from a saved folder), SDPA attention as it ships."""
    import transformers
    if folder is None:
        return None
    return transformers.GPT2LMHeadModel.from_pretrained(folder).to(device).eval()


def forward_table(model, lengths, repeat) -> dict:
    rows = {}
    for T in lengths:
        ids = torch.randint(0, model.config.vocab_size, (T,), generator=torch.Generator().manual_seed(T)).tolist()
        plain = best_ms(lambda: model.trace(ids, capture=False), repeat)
        full = best_ms(lambda: model.trace(ids, capture=True), repeat)
        rows[T] = (plain, full)
        print(f"  T={T:<4} plain {plain:8.1f} ms   all captures {full:8.1f} ms   ratio {full / plain:5.2f}")
    return rows


def decode_tok_s(model, prompt, new_tokens, **kw) -> float:
    gen = model.generate(prompt, max_new_tokens=new_tokens, temperature=1.0, seed=0, **kw)
    t0 = time.perf_counter()
    gen.run()
    return len(gen.new_ids) / (time.perf_counter() - t0)


def hf_decode_tok_s(hf, prompt_ids, new_tokens) -> float:
    ids = torch.tensor([prompt_ids], device=hf.device)
    kw = dict(do_sample=True, top_k=0, temperature=1.0, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
              pad_token_id=50256)
    with torch.inference_mode():
        hf.generate(ids, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        t0 = time.perf_counter()
        out = hf.generate(ids, **kw)
    return (out.shape[1] - ids.shape[1]) / (time.perf_counter() - t0)


def resample_ms(model, repeat: int) -> float:
    """Re-sampling one step from cached logits with new slider values: no forward pass, full vocabulary."""
    from model_runtime.sampling import SamplingParams, draw, make_generator, sampling_record
    logits = model.trace(list(range(100, 132)), capture=False).logits[-1]
    settings = [SamplingParams(0.7 + 0.1 * i, top_k=40 * (i % 2), top_p=0.9, seed=i) for i in range(4)]
    return best_ms(lambda: [draw(sampling_record(logits, p), make_generator(p.seed)) for p in settings],
                     repeat * 10) / len(settings)


def bf16_error(model_source, ids) -> dict:
    f32 = load_gpt2(model_source, device="cpu").trace(ids, capture=False).logits
    bf16 = load_gpt2(model_source, device="cpu", dtype="bfloat16").trace(ids, capture=False).logits
    p32, p16 = f32.softmax(-1), bf16.softmax(-1)
    return {"max_abs_logit_err": float((f32 - bf16).abs().max()),
            "max_abs_prob_err": float((p32 - p16).abs().max()),
            "top1_agreement": float((f32.argmax(-1) == bf16.argmax(-1)).float().mean())}


def arguments(argv=None, description: str = __doc__.splitlines()[0], new_tokens: int = 128, repeat: int = 10,
              quick: tuple[int, int] = (16, 2), draft: bool = False):
    """The options every decode benchmark takes (its own defaults, and what --quick uses); `draft` adds
    --draft, the speculative draft model."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=None, help="hub id or path; default: full-size random GPT-2")
    if draft:
        parser.add_argument("--draft", default="distilgpt2",
                            help="hub id or path (default distilgpt2: from the HF cache, else untrained)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--new-tokens", type=int, default=new_tokens)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--quick", action="store_true", help="fewer tokens and repeats (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.new_tokens, args.repeat = quick
    return args


def main(argv=None) -> None:
    args = arguments(argv)
    source, _folder = model_source(args.model)
    print(json.dumps(run(source, args.device, args.new_tokens, args.repeat)))


def run(source: str, device: str, n: int, repeat: int) -> dict:
    """Print the runtime tables; return their figures."""
    model = load_gpt2(source, device=device)
    print(f"{model!r}  torch {torch.__version__}, {torch.get_num_threads()} threads")
    folder = source if Path(source).is_dir() else None
    hf = hf_reference(folder, str(model.device))

    print("\nForward pass, plain vs all captures (best of", repeat, "runs)")
    rows = forward_table(model, [8, 64, 256], repeat)

    prompt = list(range(1000, 1016))
    print(f"\nDecode, {len(prompt)}-token prompt, {n} new tokens, sampled (temperature 1, no top-k)")
    ours_nocap = decode_tok_s(model, prompt, n)
    ours_cap = decode_tok_s(model, prompt, n, capture=True)
    ours_nocache = decode_tok_s(model, prompt, n, use_cache=False)
    hf_tok_s = hf_decode_tok_s(hf, prompt, n) if hf is not None else None
    print(f"  ours, KV cache, no captures   {ours_nocap:7.1f} tok/s")
    print(f"  ours, KV cache, all captures  {ours_cap:7.1f} tok/s")
    print(f"  ours, no cache                {ours_nocache:7.1f} tok/s   cache speed-up {ours_nocap / ours_nocache:4.1f}x")
    if hf_tok_s:
        print(f"  transformers generate         {hf_tok_s:7.1f} tok/s   ours/HF {ours_cap / hf_tok_s:4.2f}x "
              f"(captures on), {ours_nocap / hf_tok_s:4.2f}x (off)")

    resample = resample_ms(model, repeat)
    print(f"  re-sampling a step from cached logits (new temperature / top-k / top-p / seed): {resample:.2f} ms")

    print("\nbfloat16 vs float32 logits (T=64)")
    err = bf16_error(source, list(range(2000, 2064)))
    print("  " + "  ".join(f"{k} {v:.4g}" for k, v in err.items()))

    figures = {
        "device": str(model.device),
        "forward_ms": {str(T): {"plain": round(p, 2), "captures": round(c, 2)} for T, (p, c) in rows.items()},
        "capture_overhead_t64": round(rows[64][1] / rows[64][0], 3),
        "decode_tok_s": {"cache_captures": round(ours_cap, 1), "cache": round(ours_nocap, 1),
                         "no_cache": round(ours_nocache, 1), "hf_generate": hf_tok_s and round(hf_tok_s, 1)},
        "decode_vs_hf": hf_tok_s and round(ours_cap / hf_tok_s, 3),
        f"cache_speedup_{n}": round(ours_nocap / ours_nocache, 2),
        "resample_ms": round(resample, 3),
        "bf16": err,
    }
    return figures


if __name__ == "__main__":
    main()
