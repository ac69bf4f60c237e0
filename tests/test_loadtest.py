"""A short classroom under gunicorn (10 students, 10 s, loopback only): no request fails, the server still answers."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from loadtest import run  # noqa: E402


def test_ten_students_for_ten_seconds(tiny_hf):
    report = run(users=10, seconds=10, model=str(tiny_hf[0]), workers=2, threads=4, max_requests=50, think=(0.2, 1.0))
    assert report["requests"] >= 20
    assert report["errors"] == 0, report["by_kind"]
    assert report["answers_after"]
    assert {"new prompt", "slider", "generate 20"} <= set(report["by_kind"])
    # Generations ran on the machine's one engine (gunicorn.conf.py starts it), streamed to the polling client.
    assert report["generations"] >= 1 and report["ttft_p95_ms"] > 0 and report["mean_batch"] >= 1
    assert {"users", "errors", "ttft_p95_ms", "tpot_p50_ms", "generation_p95_ms", "click_p95_ms", "mean_batch",
            "memory_growth"} <= set(report)
