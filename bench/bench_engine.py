"""Engine benchmark: decode tokens/s of the continuous-batching engine with 1, 4 and 16 concurrent streams (and 32
on CUDA), and one engine stream against `transformers` `generate`. Prints a table and ends with one JSON line.

    python bench/bench_engine.py                 # full-size GPT-2 with random weights (same speed as trained)
    python bench/bench_engine.py --model gpt2    # real weights from the HF cache

What is measured:
- decode tokens/s with S streams: S jobs (8-token prompts, sampled at temperature 1) submitted together; timed
  between consecutive steps of the first job while all S are in the batch, so prefills are excluded and every
  interval is one whole scheduler round (one S-row forward plus S samplings). Each stream decodes `new_tokens`
  steps in that steady state.
- engine1_vs_hf: one engine job end to end (submit to its last token, prefill included) against `generate` with
  its KV cache, sampling, the same 16-token prompt and number of tokens (bench_runtime's measurement).
Figures are the best of `repeat` interleaved runs (the least disturbed on a shared machine); ratios are of those
bests. Torch runs with its default thread count, as in bench_runtime (printed in the table).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_runtime import arguments, hf_decode_tok_s, hf_reference  # noqa: E402
from bench.models import model_source  # noqa: E402
from model_runtime import load_gpt2  # noqa: E402
from model_runtime.engine import Engine  # noqa: E402

HF_PROMPT = list(range(1000, 1016))   # bench_runtime's decode prompt


def discard(step) -> None:
    """on_step for jobs whose steps nobody reads (each Step holds several vocabulary-sized tensors)."""


def stream_decode_tok_s(engine: Engine, streams: int, new_tokens: int) -> float:
    """Steady-state decode tokens/s of `streams` concurrent jobs (see the module's docstring)."""
    stamps: list[tuple[float, int]] = []

    def first(step):
        stamps.append((time.perf_counter(), step.batch_size))

    # Every job waits in the queue before the first forward (the engine cannot run while the lock is held), so
    # they join one per round; each runs `streams` extra tokens so that `new_tokens` rounds have them all.
    with engine.runtime.lock:
        jobs = [engine.submit(list(range(2000 + 64 * i, 2008 + 64 * i)), max_new_tokens=new_tokens + streams,
                              temperature=1.0, seed=i, on_step=first if i == 0 else discard)
                for i in range(streams)]
    for job in jobs:
        job.wait()
    full = [t for t, rows in stamps if rows == streams]
    if len(full) < 2:
        raise RuntimeError(f"{streams} streams never decoded together (slots {engine.slots})")
    return streams * (len(full) - 1) / (full[-1] - full[0])


def engine_e2e_tok_s(engine: Engine, prompt: list[int], new_tokens: int) -> float:
    t0 = time.perf_counter()
    job = engine.submit(prompt, max_new_tokens=new_tokens, temperature=1.0, top_k=0, seed=0, on_step=discard)
    job.wait()
    return len(job.new_ids) / (time.perf_counter() - t0)


def run(source: str, device: str, new_tokens: int = 32, repeat: int = 3) -> dict:
    """Print the engine table; return its figures."""
    runtime = load_gpt2(source, device=device)
    on_gpu = runtime.device.type == "cuda"
    counts = (1, 4, 16, 32) if on_gpu else (1, 4, 16)
    engine = Engine(runtime, slots=max(counts))
    folder = source if Path(source).is_dir() else None
    hf = hf_reference(folder, str(runtime.device))
    threads = torch.get_num_threads()
    print(f"\nEngine (continuous batching): {runtime!r}, {engine.slots} slots, torch {threads} threads, "
          f"best of {repeat} interleaved runs")

    runs: dict[str, list[float]] = {}
    try:
        # Warm-up: the first batched steps allocate the slot cache and the kernels' buffers.
        stream_decode_tok_s(engine, 4, 4)
        engine_e2e_tok_s(engine, HF_PROMPT, 4)
        for _ in range(repeat):
            for streams in counts:
                runs.setdefault(str(streams), []).append(stream_decode_tok_s(engine, streams, new_tokens))
            runs.setdefault("engine_e2e", []).append(engine_e2e_tok_s(engine, HF_PROMPT, new_tokens))
            if hf is not None:
                runs.setdefault("hf", []).append(hf_decode_tok_s(hf, HF_PROMPT, new_tokens))
        stats = engine.stats()
    finally:
        engine.close()
    best = {name: max(values) for name, values in runs.items()}

    print(f"  decode, {new_tokens} steady-state steps per stream, 8-token prompts, sampled (temperature 1)")
    print("  streams    tok/s   vs 1 stream   ms per round   (each run's tok/s)")
    for streams in counts:
        tok_s = best[str(streams)]
        print(f"  {streams:>7} {tok_s:8.1f} {tok_s / best['1']:10.2f}x {1000 * streams / tok_s:12.1f}     "
              + " ".join(f"{v:.1f}" for v in runs[str(streams)]))
    e2e, hf_tok_s = best["engine_e2e"], best.get("hf")
    print(f"  one stream end to end ({len(HF_PROMPT)}-token prompt, {new_tokens} tokens, prefill included): "
          f"engine {e2e:.1f} tok/s" + (f", transformers generate {hf_tok_s:.1f} tok/s, ratio {e2e / hf_tok_s:.2f}x"
                                       if hf_tok_s else ""))
    target = 10 if on_gpu else 3
    top = counts[-1]
    print(f"  targets: {top} streams >= {target}x one stream: {best[str(top)] / best['1']:.2f}x; "
          f"one stream >= 1.0x transformers: " + (f"{e2e / hf_tok_s:.2f}x" if hf_tok_s else "n/a (no HF folder)"))

    figures = {
        "engine_threads": threads,
        "engine_decode_tok_s": {k: round(v, 1) for k, v in best.items() if k.isdigit()},
        "batch4_vs_1": round(best["4"] / best["1"], 3),
        "batch16_vs_1": round(best["16"] / best["1"], 3),
        "engine1_e2e_tok_s": round(e2e, 1),
        "engine1_vs_hf": hf_tok_s and round(e2e / hf_tok_s, 3),
        "engine_mean_batch": round(stats["mean_batch"], 2),
    }
    if on_gpu:
        figures["batch32_vs_1"] = round(best["32"] / best["1"], 3)
    return figures


def main(argv=None) -> None:
    args = arguments(argv, __doc__.splitlines()[0], new_tokens=32, repeat=3, quick=(8, 1))
    source, _folder = model_source(args.model)
    print(json.dumps(run(source, args.device, args.new_tokens, args.repeat)))


if __name__ == "__main__":
    main()
