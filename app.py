"""Inside GPT-2: the Dash app.

    python app.py                       # http://127.0.0.1:8050, GPT-2 small from the HF cache (or untrained)
    python app.py --model distilgpt2 --port 8000
    gunicorn app:server                 # production (see Procfile); settings via INSIDE_GPT2_* variables
"""
from __future__ import annotations

import argparse
import logging
import os

from dash import Dash, set_props

from components import ids, layout, state
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
    process, from the settings given to `state.model.configure`."""
    app = Dash(__name__, title="Inside GPT-2", compress=True, update_title=None, on_error=report_error,
               meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}])
    state.views_cache.init_app(app.server, config=state.cache_config())
    app.layout = layout.page
    layout.register(app)
    for _, _, module in VIEWS:
        module.register(app)
    if runtime is not None:
        state.model.set(runtime)
    # Under gunicorn each worker loads its own model on its first request, after the fork (a forward pass in a
    # master before fork hangs the workers' torch); `python app.py` starts loading at once.
    app.server.before_request(state.model.start)
    return app


def settings_from_environment() -> dict:
    """Model settings for servers that import `app:server` (gunicorn): no command line there."""
    return {"source": os.environ.get("INSIDE_GPT2_MODEL", "gpt2"),
            "device": os.environ.get("INSIDE_GPT2_DEVICE", "auto"),
            "dtype": os.environ.get("INSIDE_GPT2_DTYPE", "float32")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Inside GPT-2: see a GPT turn a prompt into a next token.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--model", default="gpt2", help="hub id (gpt2, distilgpt2, ...), folder or .safetensors file")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--debug", action="store_true", help="Dash debug mode and reloader (never on a shared server)")
    args = parser.parse_args(argv)
    state.model.configure(source=args.model, device=args.device, dtype=args.dtype)
    print(f"Inside GPT-2 on http://{args.host}:{args.port}", flush=True)
    state.model.start()
    create_app().run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)


if __name__ == "__main__":
    main()
else:
    state.model.configure(**settings_from_environment())
    app = create_app()
    server = app.server
