"""Every benchmark in one run on one machine: the runtime's tables, then the app's, then one JSON line with all
their figures (keys include capture_overhead_t64, decode_vs_hf, cache_speedup_128, prompt_p50_ms,
head_change_p50_ms, bytes_per_interaction_t32, peak_rss_mb, the engine's engine_decode_tok_s, batch16_vs_1,
engine1_vs_hf, and the decoding lab's spec_speedup, spec_acceptance_rate, int8_vs_fp32, int8_weight_ratio) to
compare runs over time.

    python bench/bench.py                 # full-size GPT-2 with random weights
    python bench/bench.py --model gpt2    # real weights from the HF cache
"""
import argparse
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_app, bench_decoding, bench_engine, bench_runtime  # noqa: E402
from bench.models import model_source  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="hub id or path; default: full-size random GPT-2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="fewer tokens and repeats (smoke test)")
    args = parser.parse_args()
    source, _folder = model_source(args.model)
    runtime = bench_runtime.run(source, args.device, 16 if args.quick else 128, 2 if args.quick else 10)
    engine = bench_engine.run(source, args.device, 8 if args.quick else 32, 1 if args.quick else 3)
    print()
    decoding = bench_decoding.run(source, "distilgpt2", args.device, 8 if args.quick else 32, 1 if args.quick else 3)
    print()
    app = bench_app.run(source, 32, 3 if args.quick else 15)
    print(json.dumps({"machine": platform.machine(), **runtime, **engine, **decoding, **app}))


if __name__ == "__main__":
    main()
