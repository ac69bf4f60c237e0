"""Screenshot the app in headless Chromium (Debian's chromium + chromedriver, the browser tests' options).

    python scripts/screenshot.py                      # GPT-2 from the HF cache, else the untrained fallback
    python scripts/screenshot.py --model /path/to/gpt2 --view attention --block 5 --head 1
    python scripts/screenshot.py --width 400 --out /tmp/phone.png

Starts the app on a free loopback port, opens it at a link with the prompt and view, waits until the page has
run the prompt and drawn its figures, and saves the PNG (docs/screenshot.png by default, shown in the README).
"""
from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Done when the prompt has run (stages drawn), no callback is pending and every figure in the open tab is drawn.
PAGE_DRAWN = """
if (!document.querySelector('#pipeline .stage')) { return false; }
if (document.querySelector('[data-dash-is-loading="true"]')) { return false; }
const graphs = document.querySelectorAll('.view .dash-graph').length;
const plots = Array.from(document.querySelectorAll('.view .js-plotly-plot'));
return plots.length >= graphs && plots.every(p => p._fullData);
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chrome(width: int, height: int):
    """Headless Chromium with the options the browser tests use (tests/conftest.py)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.conftest import pytest_setup_options
    options = pytest_setup_options()
    options.add_argument("--hide-scrollbars")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_window_size(width, height)
    return driver


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2", help="hub id or path; without weights, the untrained fallback")
    parser.add_argument("--view", default="tokens")
    parser.add_argument("--block", type=int, default=0, help="0-based")
    parser.add_argument("--head", type=int, default=0, help="0-based")
    parser.add_argument("--prompt", default="Data visualization empowers users to")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--full-page", action="store_true", help="grow the window to the page's full height")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for the page")
    args = parser.parse_args(argv)

    from urllib.parse import urlencode

    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    from app import create_app
    from model_runtime import load_gpt2

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    runtime = load_gpt2(args.model, device="cpu")
    print(runtime.message)
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(runtime=runtime).server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chrome(args.width, args.height)
    try:
        query = urlencode({"prompt": args.prompt, "view": args.view, "block": args.block, "head": args.head})
        driver.get(f"http://127.0.0.1:{port}/?{query}")
        WebDriverWait(driver, args.timeout, poll_frequency=0.3).until(lambda d: d.execute_script(PAGE_DRAWN))
        time.sleep(1.0)  # transitions and fonts
        if args.full_page:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(args.width, height)
            time.sleep(0.5)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.out)
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        print(f"saved {args.out} ({args.width} px wide); browser errors: {errors or 'none'}")
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
