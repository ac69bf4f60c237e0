"""Fetch a GPT-2-family checkpoint into the standard Hugging Face cache, with a progress bar.

    python -m model_runtime.download gpt2            # 548 MB: config.json + model.safetensors
    python -m model_runtime.download gpt2-medium

Afterwards `load_gpt2("gpt2")` (and the app) find the weights offline.
"""
import argparse
import sys


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
