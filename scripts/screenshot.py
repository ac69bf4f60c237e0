"""Screenshot every tab of the app in headless Chromium at the sizes a class uses (Debian's chromium +
chromedriver, the browser tests' options), and report the longest task that blocked the browser on each tab.

    python scripts/screenshot.py                          # GPT-2 from the HF cache, else the untrained fallback
    python scripts/screenshot.py --model /path/to/gpt2 --sizes phone-390x844 --views attention --block 5
    python scripts/screenshot.py --tokens 1024 --out-dir /tmp/long   # a 1,024-token passage

Starts the app on a free loopback port, opens it at a link with the prompt, and for each size (1280x720 and
1920x1080 in projector mode, a 390x844 phone, a 768x1024 tablet) opens every tab, waits until it has drawn its
figures, and saves docs/screenshots/<size>-<view>.png (the README shows some of them).
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

LOAD_PLOTLY = """
if (!window.Plotly) { const s = document.createElement('script'); s.src = window._dashPlotlyJSURL; document.head.append(s); }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chrome():
    """Headless Chromium with the options the browser tests use (tests/conftest.py), recording long tasks."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.browser import record_long_tasks
    from tests.conftest import pytest_setup_options
    options = pytest_setup_options()
    options.add_argument("--hide-scrollbars")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    record_long_tasks(driver)
    return driver


def main(argv=None) -> None:
    from tests.browser import SIZES
    from components.views import VIEWS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2", help="hub id or path; without weights, the untrained fallback")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--views", nargs="+", default=[v for v, _, _ in VIEWS], choices=[v for v, _, _ in VIEWS])
    parser.add_argument("--block", type=int, default=0, help="0-based")
    parser.add_argument("--head", type=int, default=0, help="0-based")
    parser.add_argument("--prompt", default="Data visualization empowers users to")
    parser.add_argument("--tokens", type=int, help="instead of --prompt, a passage of this many tokens")
    parser.add_argument("--out-dir", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for a tab")
    args = parser.parse_args(argv)

    from urllib.parse import urlencode

    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    from app import create_app
    from model_runtime import load_gpt2
    from tests.browser import PAGE_DRAWN, TAKE_LONGEST, long_prompt, set_projector, set_screen

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    runtime = load_gpt2(args.model, device="cpu")
    print(runtime.message)
    prompt = long_prompt(runtime.tokenizer, args.tokens) if args.tokens else args.prompt
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(runtime=runtime).server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = {value: label for value, label, _ in VIEWS}
    worst = 0.0
    try:
        for size in args.sizes:
            width, height, projector, mobile = SIZES[size]
            driver = chrome()
            try:
                set_screen(driver, width, height, mobile)
                query = urlencode({"prompt": prompt, "view": args.views[0], "block": args.block, "head": args.head})
                driver.get(f"http://127.0.0.1:{port}/?{query}")
                WebDriverWait(driver, args.timeout, 0.3).until(lambda d: d.execute_script(PAGE_DRAWN))
                # plotly.js (4.8 MB) is read once per page, with its first figure: count it as page load
                driver.execute_script(LOAD_PLOTLY)
                WebDriverWait(driver, args.timeout, 0.3).until(lambda d: d.execute_script("return !!window.Plotly"))
                set_projector(driver, projector)
                longest = driver.execute_script(TAKE_LONGEST)
                print(f"{size}: page load, plotly.js included: longest task {longest:.0f} ms")
                for view in args.views:
                    driver.find_element("xpath", f"//div[contains(@class, 'view-tab')][normalize-space()="
                                                 f"'{labels[view]}']").click()
                    time.sleep(0.3)
                    WebDriverWait(driver, args.timeout, 0.3).until(lambda d: d.execute_script(PAGE_DRAWN))
                    driver.execute_script("window.scrollTo(0, 0)")
                    time.sleep(1.0)  # transitions and fonts
                    path = out / f"{size}-{view}.png"
                    driver.save_screenshot(str(path))
                    longest = driver.execute_script(TAKE_LONGEST)
                    worst = max(worst, longest)
                    print(f"saved {path}; longest task {longest:.0f} ms")
                errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
                print(f"{size}: browser errors: {errors or 'none'}")
            finally:
                driver.quit()
        print(f"longest task that blocked the browser in a tab: {worst:.0f} ms (target 500 ms)")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
