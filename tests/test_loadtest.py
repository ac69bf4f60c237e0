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
