"""A class of students at once: starts the app under gunicorn on loopback and simulates users who each type new
prompts, move the sampling sliders and generate 20 tokens, for a bounded time and number of requests.

    python scripts/loadtest.py                          # 40 users, 60 s, GPT-2 small (or its untrained stand-in)
    python scripts/loadtest.py --users 10 --seconds 10 --model /path/to/small/model

Generations run as the page runs them: Generate submits a job to the machine's engine, then the student polls
it every 250 ms until it ends. Prints, for generations, time to first token, time per later token and end to
end (all seen at the client, polling included) and the mean batch size; p50 / p95 for every other kind of
click; errors; the server's memory (workers and engine) at start and end; then one JSON line with users,
errors, ttft_p95_ms, tpot_p50_ms, generation_p95_ms, click_p95_ms, mean_batch and memory_growth. Only
127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dash_client import DashClient  # noqa: E402
from components import generation, ids, output  # noqa: E402

PROMPTS = ["The capital of France is", "Data visualization empowers users to", "My favourite animal is the",
           "In the beginning", "The best way to learn is", "Once upon a time there was a", "1, 2, 3, 4,",
           "The weather today is", "<script>alert(1)</script>", "日本語のテキスト", "    ", "😀 emoji time"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_memory_mb(pid: int) -> float:
    """Resident memory of gunicorn's master and workers together."""
    try:
        master = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [master, *master.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def start_server(model: str, workers: int, threads: int, port: int) -> subprocess.Popen:
    env = {**os.environ, "INSIDE_GPT2_MODEL": model, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),  # as the Procfile runs it
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "app:server", "--workers", str(workers),
                             "--threads", str(threads), "--timeout", "120", "--bind", f"127.0.0.1:{port}"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url: str, deadline: float) -> DashClient:
    """Until every worker has its model (a prompt answers, several times in a row) and the engine its own (a
    generation runs to its end)."""
    while time.monotonic() < deadline:
        try:
            client = DashClient(base_url=url, timeout=60)
            # A sequence comes back only once the answering worker has its model in memory.
            answers = [new_prompt(client, "warm up")[1] for _ in range(8)]
            if all(answers) and generate(client, answers[0], random.Random(0), "warmup") is not None:
                return client
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the server did not come up in time")


def new_prompt(client: DashClient, text: str) -> tuple[bool, dict | None]:
    r = client.call(f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1}, {f"{ids.PROMPT}.value": text},
                    changed=f"{ids.RUN}.n_clicks")
    return r.status in (200, 204), r.value(ids.SEQUENCE, "data")


def slider_move(client: DashClient, sequence: dict, rng: random.Random) -> bool:
    r = client.call(f"{output.FIGURE}.figure", {
        f"{ids.SEQUENCE}.data": sequence, f"{ids.VIEW}.value": output.TAB,
        f"{ids.TEMPERATURE}.value": round(rng.uniform(0, 2), 2), f"{ids.TOP_K}.value": rng.choice([0, 5, 40, 100]),
        f"{ids.TOP_P}.value": round(rng.uniform(0.05, 1), 2), f"{ids.SEED}.value": rng.randrange(1000),
        f"{ids.TOP_N}.value": 20}, changed=f"{ids.TEMPERATURE}.value")
    return r.status in (200, 204)


def patched(response, key: str) -> list:
    """The items a callback appended to `key` of a store with a Patch (Dash sends only the operations)."""
    patch = response.value(ids.GENERATION, "data")
    if not isinstance(patch, dict):
        return []
    return [item for op in patch.get("operations", []) if op.get("location") == [key]
            and op.get("operation") == "Extend" for item in op.get("params", {}).get("value", [])]


def generate(client: DashClient, sequence: dict, rng: random.Random, session: str) -> dict | None:
    """Generate 20 tokens as the page does: submit, then poll every POLL_MS until the run ends. Times are taken
    at the client, as a student sees them: first token (click to the poll that brings it), per later token,
    end to end. None if anything failed."""
    t0 = time.perf_counter()
    r = client.call(f"{ids.GENERATION}.data", {f"{generation.RUN}.n_clicks": 1}, {
        f"{ids.SEQUENCE}.data": sequence, f"{generation.N_TOKENS}.value": 20, f"{generation.CACHE}.value": ["on"],
        f"{ids.TEMPERATURE}.value": 0.8, f"{ids.TOP_K}.value": 40, f"{ids.TOP_P}.value": 0.95,
        f"{ids.SEED}.value": rng.randrange(1000), f"{generation.SESSION}.data": session},
        changed=f"{generation.RUN}.n_clicks")
    job = r.value(generation.JOB, "data") if r.status == 200 else None
    if not job:
        return None
    first, steps, deadline = None, [], t0 + 120
    while job and time.perf_counter() < deadline:
        time.sleep(generation.POLL_MS / 1000)
        r = client.call(f"{generation.JOB}.data", {f"{generation.POLL}.n_intervals": 1}, {
            f"{generation.JOB}.data": job, f"{generation.SESSION}.data": session, f"{generation.N_TOKENS}.value": 20},
            changed=f"{generation.POLL}.n_intervals")
        if r.status != 200:
            return None
        new = patched(r, "steps")
        if new and first is None:
            first = time.perf_counter()
        steps += new
        job = r.value(generation.JOB, "data")
    end = time.perf_counter()
    if job or first is None:
        return None
    return {"ttft": first - t0, "tpot": (end - first) / max(1, len(steps) - 1), "total": end - t0,
            "batches": [s["batch_size"] for s in steps[1:]]}


def student(client: DashClient, seed: int, stop_at: float, max_requests: int, results: dict, lock,
            think: tuple[float, float]) -> None:
    rng = random.Random(seed)
    done, sequence, session = 0, None, f"student{seed}"
    while time.monotonic() < stop_at and done < max_requests:
        roll = rng.random()
        kind = "new prompt" if sequence is None or roll < 0.3 else ("generate 20" if roll > 0.9 else "slider")
        t0 = time.perf_counter()
        run = None
        try:
            if kind == "new prompt":
                # Most students run the prompt on the board; some type their own.
                text = rng.choice(PROMPTS) + ("" if rng.random() < 0.6 else f" {rng.randrange(10**6)}")
                ok, new = new_prompt(client, text)
                sequence = new or sequence
            elif kind == "slider":
                ok = slider_move(client, sequence, rng)
            else:
                run = generate(client, sequence, rng, session)
                ok = run is not None
        except OSError:
            ok = False
        with lock:
            results.setdefault(kind, []).append((time.perf_counter() - t0, ok))
            if run is not None:
                results.setdefault("runs", []).append(run)
        done += 1
        time.sleep(rng.uniform(*think))  # a student reads the page before the next click


def crowd(client, users, seconds, max_requests, think, seed=0) -> dict:
    """`users` students clicking for `seconds`; returns {kind: [(seconds, ok), ...]}."""
    results, lock = {}, threading.Lock()
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=student, args=(client, seed + i, stop_at, max_requests, results, lock, think))
               for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 180)
    return results


def run(users: int, seconds: float, model: str, workers: int, threads: int, max_requests: int,
        think: tuple[float, float] = (2.0, 6.0), warmup: float = 0) -> dict:
    """Memory is taken once the models are loaded and, with `warmup`, after that many seconds of the same
    class (caches filling up to their bounds), then again at the end."""
    port = free_port()
    server = start_server(model, workers, threads, port)
    try:
        client = wait_ready(f"http://127.0.0.1:{port}", time.monotonic() + 300)
        memory_loaded = server_memory_mb(server.pid)
        if warmup:
            crowd(client, users, warmup, max_requests, think, seed=10_000)
        memory_start = server_memory_mb(server.pid)
        results = crowd(client, users, seconds, max_requests, think)
        memory_end = server_memory_mb(server.pid)
        still_answers = new_prompt(client, "still there?")[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    runs = results.pop("runs", [])
    rows = {}
    for kind, samples in sorted(results.items()):
        latencies = sorted(s for s, _ in samples)
        rows[kind] = {"count": len(samples), "errors": sum(not ok for _, ok in samples),
                      "p50_ms": percentile_ms(latencies, 0.5), "p95_ms": percentile_ms(latencies, 0.95)}
    every = sorted(s for samples in results.values() for s, _ in samples)
    clicks = sorted(s for kind, samples in results.items() if kind != "generate 20" for s, _ in samples)
    batches = [b for run in runs for b in run["batches"]]
    return {"users": users, "seconds": seconds, "workers": workers, "threads": threads, "requests": len(every),
            "errors": sum(r["errors"] for r in rows.values()), "by_kind": rows,
            "p50_ms": percentile_ms(every, 0.5), "p95_ms": percentile_ms(every, 0.95),
            "generations": len(runs),
            "ttft_p50_ms": percentile_ms(sorted(r["ttft"] for r in runs), 0.5),
            "ttft_p95_ms": percentile_ms(sorted(r["ttft"] for r in runs), 0.95),
            "tpot_p50_ms": percentile_ms(sorted(r["tpot"] for r in runs), 0.5),
            "tpot_p95_ms": percentile_ms(sorted(r["tpot"] for r in runs), 0.95),
            "generation_p50_ms": percentile_ms(sorted(r["total"] for r in runs), 0.5),
            "generation_p95_ms": percentile_ms(sorted(r["total"] for r in runs), 0.95),
            "click_p50_ms": percentile_ms(clicks, 0.5), "click_p95_ms": percentile_ms(clicks, 0.95),
            "mean_batch": round(sum(batches) / len(batches), 2) if batches else None,
            "memory_loaded_mb": round(memory_loaded), "warmup_s": warmup,
            "memory_start_mb": round(memory_start), "memory_end_mb": round(memory_end),
            "memory_growth": round(memory_end / memory_start - 1, 3), "answers_after": still_answers}


def percentile_ms(sorted_seconds: list[float], q: float) -> float | None:
    if not sorted_seconds:
        return None
    return round(1000 * sorted_seconds[min(len(sorted_seconds) - 1, int(q * len(sorted_seconds)))], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=200, help="per user")
    parser.add_argument("--warmup", type=float, default=30,
                        help="seconds of the same class before memory is first measured (caches fill up)")
    parser.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"),
                        help="seconds a student waits between clicks (uniform)")
    parser.add_argument("--class", dest="class_scenario", action="store_true",
                        help="the class scenario instead: one teacher moves through the lesson, the students follow "
                             "and answer (scripts/loadtest_class.py)")
    args = parser.parse_args()
    if args.class_scenario:
        from loadtest_class import report, run_class
        result = run_class(args.users, args.seconds, args.model, args.workers, args.threads)
        print(report(result))
        print(json.dumps(result))
        return
    report = run(args.users, args.seconds, args.model, args.workers, args.threads, args.max_requests,
                 tuple(args.think), args.warmup)
    print(f"{report['users']} users for {report['seconds']:.0f} s (a click every {args.think[0]:g}–{args.think[1]:g} s "
          f"each), {report['workers']} workers × {report['threads']} threads: {report['requests']} requests, "
          f"{report['errors']} errors")
    for kind, row in report["by_kind"].items():
        print(f"  {kind:<12} n={row['count']:<5} p50 {row['p50_ms']:8.1f} ms   p95 {row['p95_ms']:8.1f} ms   "
              f"errors {row['errors']}")
    print(f"  generations ({report['generations']}, seen at the client, polling included): first token p50 "
          f"{report['ttft_p50_ms']} ms / p95 {report['ttft_p95_ms']} ms; per later token p50 {report['tpot_p50_ms']} "
          f"ms / p95 {report['tpot_p95_ms']} ms; end to end p50 {report['generation_p50_ms']} ms / p95 "
          f"{report['generation_p95_ms']} ms; mean batch {report['mean_batch']}")
    print(f"  every other click p50 {report['click_p50_ms']} ms, p95 {report['click_p95_ms']} ms")
    print(f"  server memory (workers and engine): {report['memory_loaded_mb']} MB with the models loaded, "
          f"{report['memory_start_mb']} MB after {args.warmup:g} s of warm-up, {report['memory_end_mb']} MB at the end "
          f"({100 * report['memory_growth']:+.1f}% over the measured {args.seconds:g} s)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
