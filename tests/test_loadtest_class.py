"""A short class under gunicorn (1 teacher, 8 students, 14 s, loopback only): every student follows every step,
every answer is counted, nothing fails."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from loadtest_class import run_class  # noqa: E402


def test_a_short_class_follows_and_answers(tiny_hf):
    report = run_class(users=8, seconds=14, model=str(tiny_hf[0]), workers=2, threads=4)
    assert report["errors"] == 0, report
    assert report["steps"] >= 2 and report["follows"] >= 8 * (report["steps"] - 1)
    assert report["answers_sent"] >= 8 and report["answers_counted"] == report["answers_sent"]
    assert report["follow_p95_ms"] is not None and report["answer_p95_ms"] is not None
