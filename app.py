"""Inside GPT-2: the Dash app.

    python app.py                       # http://127.0.0.1:8050, GPT-2 small from the HF cache (or untrained)
    python app.py --model distilgpt2 --port 8000
    gunicorn app:server                 # production (see Procfile); settings via INSIDE_GPT2_* variables
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from dash import Dash, set_props

from components import ids, layout, lesson, state
from components.shared_state import SharedStateError
from components.views import VIEWS


def report_error(error: Exception) -> None:
    """Any exception in a callback (often a value sent by hand past the page's controls) becomes a short
    message on the page; the details go to the server log, never to the browser."""
    logging.getLogger("inside_gpt2").warning("callback failed", exc_info=error)
    if isinstance(error, (ValueError, KeyError, TypeError, IndexError)):
        message = f"That request could not be handled: {str(error)[:300] or type(error).__name__}."
    else:
        message = f"Something went wrong while computing this view ({type(error).__name__}); it was logged."
    set_props(ids.APP_ERROR, {"children": message})


def create_app(runtime=None) -> Dash:
    """The app; `runtime` is an already loaded model (tests), else the model loads in the background once per
    process, from the settings given to `state.model.configure`. Raises SharedStateError, with a message for
    people, when the views cache's folder or Redis is one other accounts could write to."""
    app = Dash(__name__, title="Inside GPT-2", compress=True, update_title=None, on_error=report_error,
               meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}])
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)  # the page's language
    state.views_cache.init_app(app.server, config=state.cache_config())
    app.layout = layout.page
    layout.register(app)
    lesson.register(app)
    for _, _, module in VIEWS:
        module.register(app)
    if runtime is not None:
        state.model.set(runtime)
    # The model loads once per process, in a background thread, so the page can say "Loading GPT-2…" meanwhile.
    # `python app.py` starts it before serving; a gunicorn worker imports this module after its fork and starts
    # it here (see the end of this file); any other server starts it on its first request.
    app.server.before_request(state.model.start)
    return app


def settings_from_environment() -> dict:
    """Model settings for servers that import `app:server` (gunicorn): no command line there."""
    return {"source": os.environ.get("INSIDE_GPT2_MODEL", "gpt2"),
            "device": os.environ.get("INSIDE_GPT2_DEVICE", "auto"),
            "dtype": os.environ.get("INSIDE_GPT2_DTYPE", "float32")}


def _gunicorn_worker_import() -> bool:
    """True when gunicorn imports this module in a worker, after the fork: there the model starts loading at
    once. With `--preload` (not in our Procfile) the master imports it before forking: a loading thread started
    there would not survive the fork, and a torch forward pass in a master before the fork hangs every worker's
    first forward. So then nothing starts here, and each worker starts loading on its first request instead
    (before_request above). A `preload_app = True` in a config file is not seen here: use the command line."""
    if "gunicorn" not in sys.modules:
        return False
    args = sys.argv[1:] + os.environ.get("GUNICORN_CMD_ARGS", "").split()
    return "--preload" not in args


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Inside GPT-2: see a GPT turn a prompt into a next token.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--model", default="gpt2", help="hub id (gpt2, distilgpt2, ...), folder or .safetensors file")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "int8"])
    parser.add_argument("--debug", action="store_true",
                        help="Dash dev tools and the Werkzeug debugger (off unless given; never on a shared server)")
    args = parser.parse_args(argv)
    state.model.configure(source=args.model, device=args.device, dtype=args.dtype)
    try:
        app = create_app()
    except SharedStateError as error:  # a cache folder or Redis others could write to: the message, no traceback
        sys.exit(str(error))
    print(f"Inside GPT-2 on http://{args.host}:{args.port}", flush=True)
    state.model.start()
    app.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)


if __name__ == "__main__":
    main()
else:
    state.model.configure(**settings_from_environment())
    app = create_app()
    server = app.server  # gunicorn app:server
    if _gunicorn_worker_import():
        state.model.start()
