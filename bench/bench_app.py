"""App benchmark: server time per interaction (p50 / p95) and bytes sent, on the real callbacks in-process,
with a full-size GPT-2 (random weights unless --model), at T = 32 tokens. Ends with one JSON line.

    python bench/bench_app.py
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dash_client import DashClient  # noqa: E402
from bench.models import model_source  # noqa: E402
from components import generation, ids, output, state  # noqa: E402

WORDS = "the a model token attention head layer of in to and is learns predicts next word".split()


def prompt_of(n_tokens: int, rng: random.Random) -> str:
    """A fresh prompt of exactly n tokens (each word here is one GPT-2 token with its space)."""
    return "Once" + "".join(" " + rng.choice(WORDS) for _ in range(n_tokens - 1))


def timed(fn):
    t0 = time.perf_counter()
    response = fn()
    if response.status not in (200, 204):
        raise RuntimeError(f"callback failed with HTTP {response.status}")
    return (time.perf_counter() - t0) * 1000, response.nbytes


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="hub id or path; default: full-size random GPT-2")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=15)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = arguments(argv)
    source, _folder = model_source(args.model)
    print(json.dumps(run(source, args.tokens, args.repeat)))


def run(source: str, T: int = 32, repeat: int = 15) -> dict:
    """Print the per-interaction table; return its figures."""
    from app import create_app
    from model_runtime import load_gpt2
    runtime = load_gpt2(source, device="cpu")
    # an empty view cache: results an earlier run left on disk would make first requests look like hits
    views_dir = tempfile.TemporaryDirectory(prefix="bench-views-")  # removed when run() returns
    os.environ["INSIDE_GPT2_CACHE_DIR"] = views_dir.name
    client = DashClient(create_app(runtime=runtime).server.test_client())
    rng = random.Random(0)

    def output_view(sequence, temperature=1.0):
        return client.call(f"{output.FIGURE}.figure", {
            f"{ids.SEQUENCE}.data": sequence, f"{ids.VIEW}.value": output.TAB, f"{ids.TEMPERATURE}.value": temperature,
            f"{ids.TOP_K}.value": 40, f"{ids.TOP_P}.value": 0.9, f"{ids.SEED}.value": 0, f"{ids.TOP_N}.value": 20},
            changed=f"{ids.TEMPERATURE}.value")

    def attention_view(sequence, block, head):
        return client.call("attention-scores.figure", {f"{ids.SEQUENCE}.data": sequence,
                                                       f"{ids.VIEW}.value": "attention",
                                                       f"{ids.BLOCK}.value": block, f"{ids.HEAD}.value": head},
                           changed=f"{ids.HEAD}.value")

    def new_prompt():
        """Run a fresh prompt with the next-token view open: tokenize, overview, forward pass, the view."""
        state.traces.clear()
        r = client.call(f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1},
                        {f"{ids.PROMPT}.value": prompt_of(T, rng)}, changed=f"{ids.RUN}.n_clicks")
        sequence = r.value(ids.SEQUENCE, "data")
        overview = client.call("pipeline.children", {f"{ids.SEQUENCE}.data": sequence, f"{ids.BLOCK}.value": 0,
                                                     f"{ids.VIEW}.value": output.TAB})
        view = output_view(sequence)
        r.nbytes += overview.nbytes + view.nbytes
        return r

    figures = {}
    samples = {"new prompt": [], "block/head change": [], "same head again": [], "slider change": [],
               "generation step": []}
    sizes = {k: [] for k in samples}
    for _ in range(repeat):
        ms, size = timed(new_prompt)
        samples["new prompt"].append(ms)
        sizes["new prompt"].append(size)
    sequence = client.call(f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1}, {f"{ids.PROMPT}.value": prompt_of(T, rng)},
                           changed=f"{ids.RUN}.n_clicks").value(ids.SEQUENCE, "data")
    output_view(sequence)  # trace cached from here on
    for i in range(repeat):
        block, head = i % runtime.config.n_layer, (5 * i) % runtime.config.n_head
        ms, size = timed(lambda: attention_view(sequence, block, head))
        samples["block/head change"].append(ms)
        sizes["block/head change"].append(size)
        ms, size = timed(lambda: attention_view(sequence, block, head))  # served from the shared view cache
        samples["same head again"].append(ms)
        sizes["same head again"].append(size)
        ms, size = timed(lambda: output_view(sequence, temperature=round(0.1 + 0.1 * i, 2)))
        samples["slider change"].append(ms)
        sizes["slider change"].append(size)
    for i in range(max(2, repeat // 5)):
        ms, size = timed(lambda: client.call(f"{ids.GENERATION}.data", {f"{generation.RUN}.n_clicks": 1}, {
            f"{ids.SEQUENCE}.data": sequence, f"{generation.N_TOKENS}.value": 20, f"{generation.CACHE}.value": ["on"],
            f"{ids.TEMPERATURE}.value": 1.0, f"{ids.TOP_K}.value": 0, f"{ids.TOP_P}.value": 1.0,
            f"{ids.SEED}.value": i}, changed=f"{generation.RUN}.n_clicks"))
        samples["generation step"].append(ms / 20)
        sizes["generation step"].append(size / 20)

    print(f"{runtime!r}; T = {T} tokens; server time per interaction (ms) and JSON bytes sent")
    for kind, values in samples.items():
        figures[kind] = {"p50_ms": round(statistics.median(values), 1), "p95_ms": round(percentile(values, 0.95), 1),
                         "bytes": int(statistics.median(sizes[kind]))}
        print(f"  {kind:<18} p50 {figures[kind]['p50_ms']:8.1f}   p95 {figures[kind]['p95_ms']:8.1f}   "
              f"{figures[kind]['bytes']:>9,} bytes")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak resident memory of this process: {peak_mb:.0f} MB (alone, bench_app.py measures the app by itself)")
    return {
        "tokens": T, "interactions": figures,
        "prompt_p50_ms": figures["new prompt"]["p50_ms"], "head_change_p50_ms": figures["block/head change"]["p50_ms"],
        "head_again_p50_ms": figures["same head again"]["p50_ms"], "slider_p50_ms": figures["slider change"]["p50_ms"],
        "generation_step_p50_ms": figures["generation step"]["p50_ms"],
        "bytes_per_interaction_t32": max(f["bytes"] for k, f in figures.items() if k != "generation step"),
        "peak_rss_mb": round(peak_mb)}


if __name__ == "__main__":
    main()
