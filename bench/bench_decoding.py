"""Decoding benchmark: speculative decoding's speed-up over plain decoding with its acceptance rate, and the
weights in bfloat16 and int8 against float32 (decode tokens/s, weight memory, largest logit change, top-10
agreement). Prints a table and ends with one JSON line. Targets, reported not asserted: int8 decode >= 1.5x
float32's tokens/s at <= 0.3x its weight memory.

    python bench/bench_decoding.py                        # full-size random GPT-2, draft distilgpt2
    python bench/bench_decoding.py --model gpt2 --draft distilgpt2
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_runtime import arguments  # noqa: E402
from bench.models import model_source  # noqa: E402
from model_runtime import load_gpt2  # noqa: E402
from model_runtime.quantize import compare_dtypes, converted  # noqa: E402
from model_runtime.speculative import measure_speedup  # noqa: E402

PROMPT = "Data visualization empowers users to"
K = 4


def run(source: str, draft_source: str, device: str, n: int, repeat: int) -> dict:
    target = load_gpt2(source, device=device)
    draft = load_gpt2(draft_source, device=device)
    print(f"{target!r}  torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"draft: {draft!r}  ({'trained' if draft.pretrained else 'untrained stand-in'})")

    spec = measure_speedup(target, draft, PROMPT, k=K, max_new_tokens=n, temperature=0.0, repeats=repeat)
    print(f"\nSpeculative decoding, k={K}, greedy, {spec['new_tokens']} tokens, best of {repeat}:")
    print(f"  plain {spec['plain_tokens_per_s']:.1f} tok/s, speculative {spec['speculative_tokens_per_s']:.1f} "
          f"tok/s: {spec['speedup']:.2f}x; acceptance {spec['acceptance_rate']:.0%}, "
          f"{spec['tokens_per_round']:.2f} tokens per round, draft {spec['draft_share']:.0%} of the time; "
          f"same tokens as plain: {spec['same_tokens']}")

    copies = {name: converted(target, name) for name in ("bfloat16", "int8")}
    runs = [compare_dtypes(target, PROMPT, decode_tokens=n, runtimes=copies) for _ in range(repeat)]
    rows = runs[0]
    for row in rows:  # the best decode rate of the repeats: the least disturbed by other work
        row["decode_tokens_per_s"] = max(r["decode_tokens_per_s"] for run_rows in runs for r in run_rows
                                         if r["dtype"] == row["dtype"])
    base = rows[0]
    print(f"\nWeights, decode tokens/s (median step of {n}, best of {repeat}):")
    for row in rows:
        row["speedup"] = row["decode_tokens_per_s"] / base["decode_tokens_per_s"]
        print(f"  {row['dtype']:<9} {row['weight_bytes'] / 1e6:8.1f} MB ({row['weight_ratio']:.2f}x)  "
              f"{row['decode_tokens_per_s']:7.1f} tok/s ({row['speedup']:.2f}x)  max |dlogit| "
              f"{row['max_abs_dlogit']:.4f}  top-10 shared {row['top10_overlap']}/10")
    by = {r["dtype"]: r for r in rows}
    int8 = by["int8"]
    met = int8["speedup"] >= 1.5 and int8["weight_ratio"] <= 0.3
    print(f"\nTarget int8 >= 1.5x float32 tok/s at <= 0.3x memory: {int8['speedup']:.2f}x at "
          f"{int8['weight_ratio']:.2f}x -> {'met' if met else 'missed'}")
    short = {"float32": "fp32", "bfloat16": "bf16", "int8": "int8"}
    return {"model": target.config.name, "n_params": target.config.n_params, "draft": draft.config.name,
            "draft_pretrained": draft.pretrained, "spec_k": K, "spec_speedup": spec["speedup"],
            "spec_acceptance_rate": spec["acceptance_rate"], "spec_tokens_per_round": spec["tokens_per_round"],
            "spec_tok_s": spec["speculative_tokens_per_s"], "spec_plain_tok_s": spec["plain_tokens_per_s"],
            "spec_draft_share": spec["draft_share"],
            **{f"{short[d]}_decode_tok_s": r["decode_tokens_per_s"] for d, r in by.items()},
            **{f"{short[d]}_weight_mb": r["weight_bytes"] / 1e6 for d, r in by.items()},
            **{f"{short[d]}_vs_fp32": r["speedup"] for d, r in by.items() if d != "float32"},
            **{f"{short[d]}_max_dlogit": r["max_abs_dlogit"] for d, r in by.items() if d != "float32"},
            **{f"{short[d]}_top10_overlap": r["top10_overlap"] for d, r in by.items() if d != "float32"},
            "int8_weight_ratio": int8["weight_ratio"]}


def main(argv=None) -> None:
    args = arguments(argv, __doc__.splitlines()[0], new_tokens=32, repeat=3, quick=(8, 1), draft=True)
    source, _folder = model_source(args.model)
    print(json.dumps(run(source, args.draft, args.device, args.new_tokens, args.repeat)))


if __name__ == "__main__":
    main()
