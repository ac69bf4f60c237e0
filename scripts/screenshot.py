"""Screenshot the running app in headless Chromium (Debian's chromium + chromedriver).

    python scripts/screenshot.py                         # untrained fallback or cached GPT-2 -> docs/screenshot.png
    python scripts/screenshot.py --view attention --width 400 --out /tmp/phone.png
"""
from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chrome(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--view", default="tokens")
    parser.add_argument("--prompt", default="Data visualization empowers users to")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1800)
    parser.add_argument("--out", default="docs/screenshot.png")
    parser.add_argument("--wait", type=float, default=6.0, help="seconds for the views to render")
    args = parser.parse_args()

    from urllib.parse import urlencode

    from werkzeug.serving import make_server

    from app import create_app
    from components import state
    from model_runtime import load_gpt2

    state.model.set(load_gpt2(args.model, device="cpu"))
    port = free_port()
    server = make_server("127.0.0.1", port, create_app().server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chrome(args.width, args.height)
    try:
        driver.get(f"http://127.0.0.1:{port}/?" + urlencode({"prompt": args.prompt, "view": args.view}))
        time.sleep(args.wait)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.out)
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        print(f"saved {args.out}; browser errors: {errors or 'none'}")
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
