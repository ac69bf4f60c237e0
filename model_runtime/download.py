"""Fetch a GPT-2-family checkpoint into the standard Hugging Face cache, with a progress bar.

    python -m model_runtime.download gpt2            # 548 MB: config.json + model.safetensors
    python -m model_runtime.download gpt2-medium

Afterwards `load_gpt2("gpt2")` (and the app) find the weights offline.
"""
import argparse
import sys
import threading
import time

from tqdm.auto import tqdm


class Progress:
    """How far the weights' download has got, for a page to show while the model loads (one per process: a
    process loads one model). `hf_hub_download(..., tqdm_class=progress.bar)` reports into it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._files: dict[str, list] = {}  # file name -> [bytes done, bytes total or None]
        self._started: float | None = None

    @property
    def bar(self) -> type:
        """A tqdm class whose bars (one per file; they still print to the log) report here."""
        progress = self

        class Bar(tqdm):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._name = str(kwargs.get("desc") or "weights")
                progress._begin(self._name, kwargs.get("total"), kwargs.get("initial") or 0)

            def update(self, n=1):
                progress._advance(self._name, n or 0)
                return super().update(n)

        return Bar

    def _begin(self, name: str, total, initial: int) -> None:
        with self._lock:
            self._started = self._started or time.monotonic()
            self._files[name] = [initial, total]

    def _advance(self, name: str, n: int) -> None:
        with self._lock:
            self._files.setdefault(name, [0, None])[0] += n

    def status(self, now: float | None = None) -> dict | None:
        """{"done": bytes, "total": bytes or None (a size not known yet), "left_s": seconds or None}, or None
        before any bar: the numbers, for a page to word in its reader's language."""
        with self._lock:
            if not self._files:
                return None
            done = sum(d for d, _ in self._files.values())
            totals = [t for _, t in self._files.values()]
            started = self._started
        elapsed = (now if now is not None else time.monotonic()) - started
        total = None if None in totals or not sum(totals) else sum(totals)
        left = (total - done) / (done / elapsed) if total and 0 < done < total and elapsed > 1 else None
        return {"done": done, "total": total, "left_s": left}

    def message(self, now: float | None = None) -> str | None:
        """"Downloading GPT-2's weights: 123 of 548 MB (22%), about 1 min 10 s left." (None before any bar)."""
        status = self.status(now)
        if status is None:
            return None
        done, total, left = status["done"], status["total"], status["left_s"]
        if total is None:
            return f"Downloading GPT-2's weights: {done / 1e6:,.0f} MB so far."
        text = f"Downloading GPT-2's weights: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB ({100 * done / total:.0f}%)"
        if left is not None:
            minutes = f"{left // 60:.0f} min " if left >= 60 else ""
            text += f", about {minutes}{left % 60:.0f} s left"
        return text + ". The page fills in as soon as they are in memory."


progress = Progress()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo_id", nargs="?", default="gpt2", help="hub id, e.g. gpt2 or openai-community/gpt2")
    args = parser.parse_args(argv)
    from huggingface_hub import snapshot_download  # its tqdm bars are the progress display

    from .weights import hub_candidates
    repo = hub_candidates(args.repo_id)[0]  # the canonical name, so the cache holds one copy
    print(f"Downloading {repo} (config.json + model.safetensors) into the Hugging Face cache...")
    try:
        folder = snapshot_download(repo, allow_patterns=["config.json", "model.safetensors"])
    except Exception as error:
        print(f"Download failed: {error}", file=sys.stderr)
        return 1
    from . import load_gpt2
    model = load_gpt2(args.repo_id, device="cpu", fallback=False)
    print(f"Done: {folder}\n{model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
