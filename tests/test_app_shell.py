"""The page skeleton: command line, serving, loading state, the prompt bar's callback, shared links, the
pipeline overview; first through the callback endpoint (no browser), then a few checks in headless Chromium.

(tests/test_browser_app.py covers the first example's chips, Enter, the untrained banner, script injection,
shared links and the empty prompt in the browser; the ones here add what it does not.)"""
import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from selenium.webdriver.common.keys import Keys

import app as app_module
from app import create_app
from components import ids, layout, state
from components.layout import DEFAULTS, EXAMPLES, LOADING, MODEL_READY, URL_RESTORED
from model_runtime import GPT2Config
from tests.browser import open_page, open_tab, wait_until

CONTROLS = list(layout.CONTROL_IDS.values())


# Helpers: the callback endpoint, as the browser calls it

def dependency(client, output: str) -> dict:
    deps = json.loads(client.get("/_dash-dependencies").data)
    return next(d for d in deps if d["output"] == output or f"..{output}" in d["output"] or
                d["output"].startswith(output + "..."))


def post(client, output: str, values: dict, changed: list[str], state_values: dict | None = None):
    """POST one callback: `values` and `state_values` map "id.property" to a value (missing: None; pattern-
    matching inputs: no components), `changed` the inputs that fired (empty: the page's initial call)."""
    dep = dependency(client, output)
    every = {**values, **(state_values or {})}

    def items(kind):
        return [[] if i["id"].startswith("{") else
                {"id": i["id"], "property": i["property"], "value": every.get(f"{i['id']}.{i['property']}")}
                for i in dep[kind]]
    outputs = []
    for part in dep["output"].strip(".").split("..."):
        raw_id, prop = part.rsplit(".", 1)
        outputs.append({"id": json.loads(raw_id) if raw_id.startswith("{") else raw_id, "property": prop})
    payload = {"output": dep["output"], "outputs": outputs if dep["output"].startswith("..") else outputs[0],
               "inputs": items("inputs"), "state": items("state"), "changedPropIds": changed}
    response = client.post("/_dash-update-component", data=json.dumps(payload), content_type="application/json")
    body = response.get_json(silent=True) or {}
    return response.status_code, body.get("response", {})


def run(client, prompt, **state_values):
    """Press Run with `prompt` in the box."""
    return post(client, f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1}, [f"{ids.RUN}.n_clicks"],
                {f"{ids.PROMPT}.value": prompt, **state_values})


def page_load(client, search="", restored=False, sequence=None, changed=None):
    return post(client, f"{ids.SEQUENCE}.data", {f"{ids.URL}.search": search, f"{MODEL_READY}.data": True},
                changed or [], {f"{ids.PROMPT}.value": EXAMPLES[0], f"{URL_RESTORED}.data": restored,
                                f"{ids.SEQUENCE}.data": sequence})


@pytest.fixture(scope="module")
def client(tiny_model):
    return create_app(runtime=tiny_model).server.test_client()


@pytest.fixture
def unready(monkeypatch):
    """A model that is still loading (and never finishes on its own)."""
    holder = state.ModelHolder()
    monkeypatch.setattr(holder, "start", lambda: None)
    monkeypatch.setattr(state, "model", holder)
    return holder


# Command line and serving

def test_command_line_defaults_and_debug_flag(monkeypatch):
    calls = {}
    monkeypatch.setattr(state.model, "configure", lambda **kw: calls.setdefault("configure", kw))
    monkeypatch.setattr(state.model, "start", lambda: calls.setdefault("started", True))
    monkeypatch.setattr(app_module.Dash, "run", lambda self, **kw: calls.setdefault("run", kw))
    app_module.main([])
    assert calls["configure"] == {"source": "gpt2", "device": "auto", "dtype": "float32"}
    assert calls["run"]["host"] == "127.0.0.1" and calls["run"]["port"] == 8050
    assert calls["run"]["debug"] is False and calls["started"]
    calls.clear()
    app_module.main(["--host", "0.0.0.0", "--port", "9000", "--model", "distilgpt2", "--device", "cpu",
                     "--dtype", "bfloat16", "--debug"])
    assert calls["configure"] == {"source": "distilgpt2", "device": "cpu", "dtype": "bfloat16"}
    assert calls["run"]["host"] == "0.0.0.0" and calls["run"]["port"] == 9000 and calls["run"]["debug"] is True
    with pytest.raises(SystemExit):
        app_module.main(["--device", "tpu"])


def test_module_exposes_a_wsgi_server_and_loads_only_in_gunicorn_workers(monkeypatch):
    assert app_module.server is app_module.app.server
    monkeypatch.delitem(__import__("sys").modules, "gunicorn", raising=False)
    assert not app_module._gunicorn_worker_import()  # tests, notebooks: nothing loads on import
    monkeypatch.setitem(__import__("sys").modules, "gunicorn", object())
    monkeypatch.setattr("sys.argv", ["gunicorn", "app:server", "--workers", "2"])
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    assert app_module._gunicorn_worker_import()
    monkeypatch.setattr("sys.argv", ["gunicorn", "app:server", "--preload"])
    assert not app_module._gunicorn_worker_import()  # the master: workers load after the fork instead


def test_page_title_compression_and_no_model_choice(client):
    page = client.get("/")
    assert page.status_code == 200 and b"<title>Inside GPT-2</title>" in page.data
    script = next(src for src in re.findall(r'src="([^"]+)"', page.data.decode()) if "dash_renderer" in src)
    response = client.get(script, headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200 and response.headers.get("Content-Encoding") in ("gzip", "br")
    # Nothing on the page picks the model: it is chosen on the command line only.
    inputs = [d for d in json.loads(client.get("/_dash-dependencies").data) for i in d["inputs"] + d["state"]
              if "model" in i["id"] and i["id"] not in ("model-poll", MODEL_READY)]
    assert inputs == []


def test_procfile_runs_gunicorn_without_preload():
    from pathlib import Path
    procfile = (Path(__file__).resolve().parent.parent / "Procfile").read_text()
    web = next(line for line in procfile.splitlines() if line.startswith("web:"))
    assert "gunicorn -c gunicorn.conf.py app:server" in web and "--preload" not in web and "PORT" in web


# Loading state and banner

def test_loading_then_loaded(client, unready, tiny_model):
    status, out = post(client, f"{ids.BANNER}.children", {"model-poll.n_intervals": 1}, ["model-poll.n_intervals"])
    assert status == 200 and out[ids.BANNER]["children"] == LOADING and out["model-poll"]["disabled"] is False
    # The page's first call returns at once (no request waits for the weights) and keeps the link's prompt.
    started = time.monotonic()
    status, out = page_load(client, "?prompt=Loading+soon&temperature=0.5")
    assert status == 200 and time.monotonic() - started < 5
    assert ids.SEQUENCE not in out and out[ids.PROMPT_MESSAGE]["children"] == ""  # the banner says it
    assert out[ids.PROMPT]["value"] == "Loading soon" and out[URL_RESTORED]["data"] == "prompt"
    status, out = run(client, "Run while loading")
    assert "still loading" in out[ids.PROMPT_MESSAGE]["children"]
    unready.set(tiny_model)
    status, out = post(client, f"{ids.BANNER}.children", {"model-poll.n_intervals": 2}, ["model-poll.n_intervals"])
    assert out["model-poll"]["disabled"] is True and out[MODEL_READY]["data"] is True
    assert [o["label"] for o in out[ids.BLOCK]["options"]] == ["1", "2"]  # 1-based labels, 0-based values
    assert [o["value"] for o in out[ids.HEAD]["options"]] == [0, 1, 2, 3]
    # Loaded: the link's settings are applied, and the prompt in the box runs (what was typed meanwhile, if any).
    status, out = post(client, f"{ids.SEQUENCE}.data", {f"{ids.URL}.search": "?prompt=Loading+soon&temperature=0.5",
                                                        f"{MODEL_READY}.data": True}, [f"{MODEL_READY}.data"],
                       {f"{ids.PROMPT}.value": "Typed meanwhile", f"{URL_RESTORED}.data": "prompt"})
    assert out[ids.SEQUENCE]["data"]["ids"] == tiny_model.tokenizer.encode("Typed meanwhile")
    assert out[ids.TEMPERATURE]["value"] == 0.5 and out[URL_RESTORED]["data"] is True
    # A page whose first call came after loading: the link's prompt.
    status, out = page_load(client, "?prompt=Loading+soon", changed=[f"{MODEL_READY}.data"])
    assert out[ids.SEQUENCE]["data"]["ids"] == tiny_model.tokenizer.encode("Loading soon")


def test_failed_load_is_said_on_the_page(client, monkeypatch):
    holder = state.ModelHolder()
    holder.configure(source="/nonexistent/weights.safetensors", device="cpu")
    monkeypatch.setattr(state, "model", holder)
    holder.start()
    with pytest.raises(RuntimeError, match="could not be loaded"):
        holder.get(timeout=60)
    status, out = post(client, f"{ids.BANNER}.children", {"model-poll.n_intervals": 1}, ["model-poll.n_intervals"])
    assert "could not be loaded" in out[ids.BANNER]["children"] and "error" in out[ids.BANNER]["className"]
    status, out = page_load(client)
    assert status == 200 and "could not be loaded" in out[ids.PROMPT_MESSAGE]["children"]
    status, out = run(client, "hello")
    assert status == 200 and "could not be loaded" in out[ids.PROMPT_MESSAGE]["children"]


def test_untrained_banner_shows_the_command_as_code():
    children = layout.banner_children("Untrained weights: x. Fetch GPT-2 with `python -m model_runtime.download "
                                      "gpt2` and restart.")
    assert children[0] == "Untrained weights: x. Fetch GPT-2 with " and children[2] == " and restart."
    assert children[1].children == "python -m model_runtime.download gpt2" and children[1].className == "command"
    assert layout.banner_children("<b>no markup</b>") == ["<b>no markup</b>"]


# The prompt bar

def test_page_load_runs_the_first_example(client, tiny_model):
    status, out = page_load(client)
    assert status == 200 and out[ids.PROMPT]["value"] == EXAMPLES[0]
    assert out[ids.SEQUENCE]["data"] == {"ids": tiny_model.tokenizer.encode(EXAMPLES[0]), "n_prompt": 6,
                                         "label": "prompt", "prompt": EXAMPLES[0]}
    assert [out[c]["value"] for c in CONTROLS] == [DEFAULTS[k] for k in layout.CONTROL_IDS]


def test_example_chip_runs_its_prompt(client, tiny_model):
    changed = [json.dumps({"index": 2, "type": "example"}, separators=(",", ":")) + ".n_clicks"]
    status, out = post(client, f"{ids.SEQUENCE}.data", {}, changed, {f"{ids.PROMPT}.value": "old"})
    assert status == 200 and out[ids.PROMPT]["value"] == EXAMPLES[2]
    assert out[ids.SEQUENCE]["data"]["ids"] == tiny_model.tokenizer.encode(EXAMPLES[2])
    changed = [json.dumps({"index": 99, "type": "example"}, separators=(",", ":")) + ".n_clicks"]
    assert post(client, f"{ids.SEQUENCE}.data", {}, changed)[0] == 204


@pytest.mark.parametrize("prompt, message", [
    ("", "empty"), (" \n\t ", "empty"), (None, "must be text"), (123, "must be text"), ([1, 2], "must be text"),
    ({"a": 1}, "must be text"), ("x" * 200_001, "at most 200,000"), ("word " * 300, "only the last 128 tokens"),
])
def test_prompt_messages(client, prompt, message):
    status, out = run(client, prompt)
    assert status == 200 and message in out[ids.PROMPT_MESSAGE]["children"]
    assert "Traceback" not in json.dumps(out)


@pytest.mark.parametrize("prompt", ["a" * 100_000, "\x00\x01\x07\x1b[31mred\x7f", "lone \ud800 surrogate \udfff",
                                    "\u202eevil\u200f \u200b\ufeff", "مرحبا بالعالم",
                                    "<|endoftext|> after"])
def test_odd_prompts_run_and_the_server_keeps_answering(client, prompt, tiny_model):
    status, out = run(client, prompt)
    assert status == 200
    sequence = out[ids.SEQUENCE]["data"]
    assert 0 < len(sequence["ids"]) <= tiny_model.config.n_ctx and sequence["n_prompt"] == len(sequence["ids"])
    assert run(client, "Still here?")[0] == 200


def test_trimmed_prompt_keeps_the_last_tokens(client, tiny_model):
    prompt = " ".join(str(i) for i in range(300))
    status, out = run(client, prompt)
    assert out[ids.SEQUENCE]["data"]["ids"] == tiny_model.tokenizer.encode(prompt)[-tiny_model.config.n_ctx:]


# Shared links

def test_link_restores_prompt_and_settings(client, tiny_model):
    query = urlencode({"prompt": "A shared prompt", "temperature": 0.35, "top_k": 7, "top_p": 0.9, "seed": 42,
                       "top_n": 30, "block": 1, "head": 3, "view": "mlp"})
    status, out = page_load(client, "?" + query)
    assert out[ids.PROMPT]["value"] == "A shared prompt"
    assert out[ids.SEQUENCE]["data"]["ids"] == tiny_model.tokenizer.encode("A shared prompt")
    assert [out[c]["value"] for c in CONTROLS] == [0.35, 7, 0.9, 42, 30, 1, 3, "mlp"]


@pytest.mark.parametrize("search", [
    "?temperature=banana&top_k=-5&top_p=7&seed=1.5&top_n=nan&block=99&head=-1&view=nowhere",
    "?temperature=inf&top_k=1e400&seed=99999999999999&block=1.0000001&head=true&view=",
    "?" + "&".join(f"f{i}=1" for i in range(200)), "?prompt=%ZZ%00&view=%3Cscript%3E",
    "garbage without a question mark",
    None, 12, ["?prompt=x"], {"a": 1},
])
def test_junk_links_fall_back_to_defaults(client, search):
    status, out = page_load(client, search)
    assert status == 200 and out[ids.SEQUENCE]["data"]["ids"]
    assert [out[c]["value"] for c in CONTROLS] == [DEFAULTS[k] for k in layout.CONTROL_IDS]


def test_link_blocks_and_heads_must_exist_in_the_model():
    _, settings = layout.parse_settings("?block=11&head=11", n_layer=12, n_head=12)
    assert settings["block"] == 11 and settings["head"] == 11
    _, settings = layout.parse_settings("?block=12&head=12", n_layer=12, n_head=12)
    assert settings["block"] == 0 and settings["head"] == 0
    prompt, _ = layout.parse_settings("?prompt=%20%20")
    assert prompt is None  # a blank prompt in a link: the first example


def test_after_restoring_only_run_and_examples_run_prompts(client):
    # The model becoming ready after the page restored its link and ran: nothing to do.
    status, _ = page_load(client, restored=True, sequence={"ids": [1]}, changed=[f"{MODEL_READY}.data"])
    assert status == 204


# The pipeline overview

def test_pipeline_stages_and_shapes():
    cfg = GPT2Config()
    row = layout.pipeline_stages(cfg, 6, block=4, view="attention")
    stages = [c for c in row if isinstance(getattr(c, "id", None), dict)]
    assert [s.children[0].children for s in stages] == ["Tokens", "Embeddings"] + [
        f"Block {i}" for i in range(1, 13)] + ["Output"]
    assert stages[0].children[1].children == "6 tokens" and stages[1].children[1].children == "6 × 768"
    block = stages[2 + 4]
    assert [d.children for d in block.children[1].children] == ["12 heads × 6 × 64", "MLP 6 × 3,072"]
    assert "stage-active" in block.className and sum("stage-active" in s.className for s in stages) == 1
    assert block.id == {"type": "stage", "view": "attention", "block": 4}
    assert stages[-1].children[1].children == "6 × 50,257 logits"
    row = layout.pipeline_stages(cfg, None, block=None, view="tokens")
    assert row[0].children[1].children == "? tokens" and "stage-active" in row[0].className


def test_pipeline_callback(client, tiny_model):
    status, out = post(client, "pipeline.children", {f"{ids.SEQUENCE}.data": {"ids": [1, 2, 3]},
                                                      f"{ids.BLOCK}.value": 1, f"{ids.VIEW}.value": "mlp"},
                       [f"{ids.SEQUENCE}.data"])
    text = json.dumps(out["pipeline"]["children"])
    assert status == 200 and "3 tokens" in text and "4 heads \\u00d7 3 \\u00d7 16" in text
    for junk in (None, {"ids": "x"}, "x", 5):  # still a row, with T unknown
        status, out = post(client, "pipeline.children", {f"{ids.SEQUENCE}.data": junk, f"{ids.BLOCK}.value": "x"},
                           [f"{ids.SEQUENCE}.data"])
        assert status == 200 and "? tokens" in json.dumps(out)


def test_clicking_a_stage_opens_its_view(client):
    def click(view, block):
        stage = json.dumps({"block": block, "type": "stage", "view": view}, separators=(",", ":"))
        deps = json.loads(client.get("/_dash-dependencies").data)
        dep = next(d for d in deps if '"stage"' in d["inputs"][0]["id"])
        payload = {"output": dep["output"],
                   "outputs": [{"id": ids.VIEW, "property": "value"}, {"id": ids.BLOCK, "property": "value"}],
                   "inputs": [[{"id": {"block": block, "type": "stage", "view": view}, "property": "n_clicks",
                                "value": 1}]],
                   "state": [], "changedPropIds": [stage + ".n_clicks"]}
        response = client.post("/_dash-update-component", data=json.dumps(payload), content_type="application/json")
        return response.status_code, (response.get_json(silent=True) or {}).get("response", {})
    status, out = click("attention", 5)
    assert status == 200 and out[ids.VIEW]["value"] == "attention" and out[ids.BLOCK]["value"] == 5
    status, out = click("embeddings", -1)
    assert out[ids.VIEW]["value"] == "embeddings" and ids.BLOCK not in out
    status, out = click("nowhere", "x")
    assert status == 200 and out[ids.VIEW]["value"] == "tokens"


# In the browser

def chips(dash_duo):
    return len(dash_duo.find_elements("#token-chips .token-chip"))


def test_browser_loading_state_then_the_page_fills_in(dash_duo, unready, tiny_model):
    dash_duo.start_server(create_app())
    dash_duo.wait_for_text_to_equal(f"#{ids.BANNER}", LOADING, timeout=20)
    time.sleep(1.5)  # polls while loading: still loading, nothing breaks
    assert dash_duo.find_element(f"#{ids.BANNER}").text == LOADING and chips(dash_duo) == 0
    unready.set(tiny_model)
    wait_until(dash_duo, lambda: chips(dash_duo) == len(tiny_model.tokenizer.encode(EXAMPLES[0])),
               message="chips after loading")
    assert "parameters" in dash_duo.find_element(f"#{ids.BANNER}").text
    assert dash_duo.get_logs() == []


def test_browser_controls_keys_examples_and_pipeline(dash_duo, tiny_model):
    open_page(dash_duo, tiny_model, temperature=0, top_k=0, top_p=1)
    wait_until(dash_duo, lambda: chips(dash_duo) > 0)
    # Slider labels: greedy and off.
    open_tab(dash_duo, "Next token")  # the tab that reads the sliders shows them
    assert dash_duo.find_element("#temperature-value").text == "0 (greedy)"
    assert dash_duo.find_element("#top-k-value").text == "off"
    assert dash_duo.find_element("#top-p-value").text == "1 (off)"
    open_tab(dash_duo, "Tokens")
    # Shift+Enter adds a line and runs nothing; Enter runs.
    box = dash_duo.find_element(f"#{ids.PROMPT}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("one", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "two")
    time.sleep(0.8)
    assert box.get_attribute("value") == "one\ntwo" and chips(dash_duo) == 6
    box.send_keys(Keys.ENTER)
    wait_until(dash_duo, lambda: chips(dash_duo) == len(tiny_model.tokenizer.encode("one\ntwo")))
    assert "↵" in dash_duo.find_element("#token-chips").text
    # An example chip fills the box and runs.
    dash_duo.find_elements(".example-chip")[1].click()
    wait_until(dash_duo, lambda: box.get_attribute("value") == EXAMPLES[1])
    wait_until(dash_duo, lambda: chips(dash_duo) == len(tiny_model.tokenizer.encode(EXAMPLES[1])))
    # The overview: Block 2 opens the attention tab on block 2, highlighted; the URL follows.
    dash_duo.find_element("//button[contains(@class,'stage')][.//div[text()='Block 2']]", "XPATH").click()
    wait_until(dash_duo, lambda: "Block 2" in dash_duo.find_element(".stage-active").text)
    wait_until(dash_duo, lambda: "view=attention" in dash_duo.driver.current_url)
    query = parse_qs(urlparse(dash_duo.driver.current_url).query)
    assert query["block"] == ["1"] and query["prompt"] == [EXAMPLES[1]] and query["temperature"] == ["0"]
    assert dash_duo.find_element(".view-tab-selected").text == "Attention head"
    assert dash_duo.get_logs() == []


def test_browser_phone_width_has_no_sideways_page_scroll(dash_duo, tiny_model):
    dash_duo.start_server(create_app(runtime=tiny_model))
    dash_duo.driver.set_window_size(400, 900)
    wait_until(dash_duo, lambda: chips(dash_duo) > 0)
    widths = dash_duo.driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    dash_duo.find_element("#projector input").click()  # projector mode: larger type, same page
    wait_until(dash_duo, lambda: "projector" in dash_duo.find_element("#page").get_attribute("class"))
    assert dash_duo.get_logs() == []
