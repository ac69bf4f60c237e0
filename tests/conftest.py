"""Shared fixtures: one full-size random GPT-2 per session (saved the way Hugging Face saves it), tiny ones for
everything where size does not matter, and the headless-Chromium options for browser tests."""
import os
import tempfile

import pytest
import torch
import transformers

from model_runtime import GPT2Config, load_gpt2
from model_runtime.model import GPT
from model_runtime.runtime import GPT2Runtime
from model_runtime.tokenizer import get_tokenizer

# Views' result cache: a fresh folder per test session (components.state reads this when the app is made).
os.environ["INSIDE_GPT2_CACHE_DIR"] = tempfile.mkdtemp(prefix="inside-gpt2-test-cache-")

TINY = dict(n_layer=2, n_head=4, n_embd=64, n_positions=128, vocab_size=50257)


def save_random_hf_gpt2(folder, seed=0, **sizes):
    """A randomly initialised `transformers` GPT-2 saved with save_pretrained; returns the HF model (eager
    attention, so `output_attentions` is filled)."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(**sizes)
    config._attn_implementation = "eager"
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="session")
def full_hf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-random")
    return folder, save_random_hf_gpt2(folder)


@pytest.fixture(scope="session")
def full_model(full_hf):
    return load_gpt2(str(full_hf[0]), device="cpu")


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-tiny")
    return folder, save_random_hf_gpt2(folder, seed=1, **TINY)


@pytest.fixture(scope="session")
def tiny_model(tiny_hf):
    return load_gpt2(str(tiny_hf[0]), device="cpu")


@pytest.fixture(scope="session")
def long_context_model():
    """GPT-2's full context (1,024 positions) at a tiny width: long prompts are cheap."""
    cfg = GPT2Config(n_layer=2, n_head=4, d_model=64, d_mlp=256, name="long-tiny")
    return GPT2Runtime(GPT(cfg).init_untrained(), get_tokenizer(), pretrained=False, source="test",
                       message="Untrained weights (test).")


@pytest.fixture(autouse=True)
def engine_per_browser_test(request):
    """A browser test's server, when it stops, raises SystemExit in every thread started while it ran (Dash's
    testing KillerThread), the in-process engine's scheduler among them; a thread waiting for work only takes
    that exception at its next job, which it then loses. So each browser test's engine stops with the test, and
    the next test's page starts a new one."""
    yield
    if {"dash_duo", "dash_br", "dash_thread_server"} & set(request.fixturenames):
        from components import state
        state.engine.close()


def pytest_setup_options():
    """Browser tests (dash_duo) drive Debian's Chromium; nothing is downloaded."""
    from selenium.webdriver.chrome.options import Options
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    return options


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A Redis server for the session, reachable only through a unix socket in a 0700 folder (no TCP, nothing
    saved), as deployments should run it; yields its redis-py URL (unix:///.../redis.sock)."""
    import shutil
    import subprocess
    import time

    import redis
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (bash scripts/test.sh installs it with apt)")
    folder = tmp_path_factory.mktemp("redis")
    folder.chmod(0o700)
    sock, log = folder / "redis.sock", folder / "redis.log"
    server = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                               "--save", "", "--appendonly", "no", "--dir", str(folder), "--logfile", str(log)])
    client = redis.Redis(unix_socket_path=str(sock))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer PING on {sock}; its log: {log}")
                time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def one_torch_thread():
    """Tiny models run several times faster on one thread than on two busy ones, and two shared cores must
    leave room for Chromium: tests that want that ask for this fixture."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
