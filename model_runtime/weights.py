"""Finding and reading GPT-2 weights: a Hugging Face hub id, a local folder, or one .safetensors file.

Order for a hub id: the local HF cache (no network), then the hub itself only if the network answers within a
few seconds, so that a machine without internet falls back to untrained weights at once instead of hanging in
retries. Pickled checkpoints are read with ``weights_only=True`` so loading a file can never run code.
"""
from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from .config import FAMILY, HEADS_BY_WIDTH, GPT2Config

DOWNLOAD_COMMAND = "python -m model_runtime.download gpt2"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
MASK_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")


class WeightsUnavailable(RuntimeError):
    """No weights could be had for a hub id (not cached, and no network or offline mode)."""


def hub_candidates(repo_id: str) -> list[str]:
    """The names a repository may be cached under, canonical first: the released GPT-2 models moved from
    `gpt2` to `openai-community/gpt2`, and the cache may hold either."""
    name = repo_id.removeprefix("openai-community/")
    if name in FAMILY:
        return [f"openai-community/{name}", name]
    return [repo_id]


def _offline() -> bool:
    # Read at call time: huggingface_hub reads HF_HUB_OFFLINE only once, when it is first imported.
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _download_from_hub(repo_id: str) -> Path:
    """Folder holding config.json and one weight file for `repo_id`, from the cache or (if reachable) the hub."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    from .download import progress

    candidates = hub_candidates(repo_id)
    for local_only in (True, False):
        if not local_only:
            if _offline():
                raise WeightsUnavailable(f"'{repo_id}' is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
            if not _hub_reachable():
                raise WeightsUnavailable(f"'{repo_id}' is not in the Hugging Face cache and the hub is unreachable")
        for repo in candidates:
            for weight_file in WEIGHT_FILES:
                try:  # a download's progress goes to download.progress, which the page shows
                    config = hf_hub_download(repo, "config.json", local_files_only=local_only)
                    hf_hub_download(repo, weight_file, local_files_only=local_only, tqdm_class=progress.bar)
                    return Path(config).parent
                except (LocalEntryNotFoundError, EntryNotFoundError):
                    continue
                except Exception as error:  # network trouble, unknown repo, gated repo: all mean "no weights"
                    if local_only:
                        continue
                    raise WeightsUnavailable(f"could not fetch '{repo}' from the hub: {error}") from error
    raise WeightsUnavailable(f"'{repo_id}' has no GPT-2 weights on the hub")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def infer_config(state: dict[str, torch.Tensor], name: str) -> GPT2Config:
    """Sizes from tensor shapes, for a bare .safetensors file; the head count comes from the family table."""
    vocab, d_model = state["wte.weight"].shape
    n_layer = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("h."))
    if d_model not in HEADS_BY_WIDTH:
        raise ValueError(f"cannot tell the head count of width {d_model} without a config.json beside the file")
    return GPT2Config(vocab_size=vocab, n_ctx=state["wpe.weight"].shape[0], n_layer=n_layer,
                      n_head=HEADS_BY_WIDTH[d_model], d_model=d_model,
                      d_mlp=state["h.0.mlp.c_fc.weight"].shape[1], name=name)


def convert_hf_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF GPT-2 tensors -> this project's parameter names (the same names, less the `transformer.` prefix)."""
    out = {}
    for key, tensor in state.items():
        key = key.removeprefix("transformer.")
        if MASK_BUFFER.fullmatch(key) or key == "lm_head.weight":
            continue  # causal-mask buffers of old checkpoints; the output head is tied to wte
        out[key] = tensor  # Conv1D weights keep their [in, out] layout: model.Conv1D uses it as is
    return out


def load_checkpoint(source: str) -> tuple[GPT2Config, dict[str, torch.Tensor], str]:
    """(config, state dict in this project's naming, where it came from) for a folder, file or hub id.

    Raises FileNotFoundError for a local path that is not there or holds no weights (a user's typo should be
    an error), and WeightsUnavailable when a hub id cannot be had (the caller may fall back to untrained)."""
    path = Path(source).expanduser()
    looks_local = path.exists() or source.startswith((".", "/", "~")) or path.suffix in (".safetensors", ".bin")
    if not looks_local:
        path = _download_from_hub(source)
    if path.is_file():
        folder, weight_path = path.parent, path
    elif path.is_dir():
        folder = path
        weight_path = next((path / f for f in WEIGHT_FILES if (path / f).is_file()), None)
        if weight_path is None:
            raise FileNotFoundError(f"{path} holds neither {' nor '.join(WEIGHT_FILES)}")
    else:
        raise FileNotFoundError(f"no such file or folder: {path}")
    state = convert_hf_state_dict(read_state_dict(weight_path))
    name = source if not looks_local else weight_path.parent.name
    config_file = folder / "config.json"
    if config_file.is_file():
        config = GPT2Config.from_hf(json.loads(config_file.read_text()), name=name)
    else:
        config = infer_config(state, name)
    return config, state, str(weight_path)


def family_config(source: str) -> GPT2Config:
    """The config an untrained stand-in for `source` should have (GPT-2 small unless the name says otherwise)."""
    return FAMILY.get(source.split("/")[-1], FAMILY["gpt2"])
