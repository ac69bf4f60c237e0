"""A first start downloads GPT-2: the page shows the download's megabytes, percent and time left, then the model
(the hub replaced by a slow stand-in that serves a tiny checkpoint)."""
import threading
import time
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from app import create_app
from components import ids, state
from model_runtime import download, weights
from tests.browser import wait_until

SIZE = 548_000_000


def test_progress_message_counts_megabytes_percent_and_time_left():
    progress = download.Progress()
    assert progress.message() is None
    bar = progress.bar(total=SIZE, desc="model.safetensors", unit="B", disable=True)
    bar.update(137_000_000)
    text = progress.message(now=progress._started + 30)
    assert "137 of 548 MB (25%)" in text and "about 1 min 30 s left" in text


@pytest.fixture
def slow_hub(monkeypatch, tiny_hf):
    """The hub, as a stand-in: nothing cached, config.json at once, the weights in steps; the last step waits
    for `go`."""
    go, folder = threading.Event(), Path(tiny_hf[0])

    def hf_hub_download(repo, filename, *, local_files_only=False, tqdm_class=None, **_):
        if local_files_only:
            raise LocalEntryNotFoundError(f"{repo}/{filename} is not cached")
        if filename == "model.safetensors":
            bar = tqdm_class(total=SIZE, initial=0, desc=filename, unit="B", disable=True)
            for _ in range(3):
                time.sleep(0.4)
                bar.update(SIZE // 4)
            go.wait(60)
            bar.update(SIZE - 3 * (SIZE // 4))
            bar.close()
        return str(folder / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(weights, "_hub_reachable", lambda timeout=3.0: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(download, "progress", download.Progress())
    holder = state.ModelHolder()
    holder.configure(source="gpt2", device="cpu")
    monkeypatch.setattr(state, "model", holder)
    return go


def test_first_start_shows_the_download_then_the_model(dash_duo, slow_hub):
    dash_duo.start_server(create_app())

    def banner():
        return dash_duo.find_element(f"#{ids.BANNER}").text

    wait_until(dash_duo, lambda: "of 548 MB (75%)" in banner(), timeout=30, message="download progress")
    assert "left" in banner()
    slow_hub.set()
    wait_until(dash_duo, lambda: "parameters" in banner(), timeout=60, message="the model, loaded")
    wait_until(dash_duo, lambda: dash_duo.find_elements("#token-chips .token-chip"), message="the prompt ran")
    assert dash_duo.get_logs() == []
