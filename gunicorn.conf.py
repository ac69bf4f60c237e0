"""gunicorn's settings for this app (gunicorn reads this file from the folder it starts in).

The machine's generation engine runs in a process of its own, started here by gunicorn's master before any
worker forks, so that every web worker's generations batch together in one engine. Workers find it through
INSIDE_GPT2_ENGINE (a unix socket in the app's private folder) and INSIDE_GPT2_ENGINE_KEY (a fresh random key:
only processes started from this master can talk to it). If it exits, it is started again; meanwhile the
Generation view says the engine is not answering, and the rest of the page works.

With INSIDE_GPT2_ENGINE already set (`ray:...`: a Ray Serve deployment), no local engine is started.
"""
import os
import secrets
import subprocess
import sys
import threading
import time

from components.shared_state import app_folder, private_folder

_engine: dict = {}


def _engine_command(socket: str) -> list[str]:
    return [sys.executable, "-m", "model_runtime.engine_service", "--socket", socket,
            "--model", os.environ.get("INSIDE_GPT2_MODEL", "gpt2"),
            "--device", os.environ.get("INSIDE_GPT2_DEVICE", "auto"),
            "--dtype", os.environ.get("INSIDE_GPT2_DTYPE", "float32")]


def _keep_engine_running(server, command: list[str]) -> None:
    """Start the engine, and start it again if it exits while gunicorn runs (at most every 5 s)."""
    while not _engine.get("stopping"):
        started = time.monotonic()
        _engine["process"] = subprocess.Popen(command, cwd=os.path.dirname(os.path.abspath(__file__)))
        code = _engine["process"].wait()
        if _engine.get("stopping"):
            return
        server.log.error("The generation engine exited (code %s); starting it again.", code)
        time.sleep(max(0.0, 5 - (time.monotonic() - started)))


def on_starting(server):
    if os.environ.get("INSIDE_GPT2_ENGINE"):
        return
    socket = private_folder(app_folder() / "engine") / f"engine-{os.getpid()}.sock"
    os.environ["INSIDE_GPT2_ENGINE"] = f"unix:{socket}"
    os.environ["INSIDE_GPT2_ENGINE_KEY"] = secrets.token_hex(32)  # inherited by the engine and the workers only
    threading.Thread(target=_keep_engine_running, args=(server, _engine_command(str(socket))), daemon=True,
                     name="engine-keeper").start()


def on_exit(server):
    _engine["stopping"] = True
    process = _engine.get("process")
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
