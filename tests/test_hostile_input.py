"""Values sent straight to the callback endpoint, past the page's controls: every callback answers with a
handled response (a message, or no update), never a server error, and the app keeps answering."""
import pytest

from app import create_app
from bench.dash_client import DashClient
from components import ids

JUNK = [None, -1, 0, 10**9, -10**18, 1e308, "abc", "", "\x00\ud800\u202e", "x" * 100_000, [], {}, [1, "a"],
        {"ids": [10**9]}, {"ids": "junk"}, {"ids": [1.5, None]}, True]


@pytest.fixture(scope="module")
def client(tiny_model):
    return DashClient(create_app(runtime=tiny_model).server.test_client())


def server_callbacks(client):
    return [d for d in client.dependencies if not d.get("clientside_function")]


def call_raw(client, dep, value):
    """Fire `dep` with `value` in every input and state slot (pattern-matching ones left empty)."""
    from bench.dash_client import _id, _split_outputs

    def items(kind):
        return [[] if i["id"].startswith("{") else {"id": i["id"], "property": i["property"], "value": value}
                for i in dep[kind]]
    outputs = [{"id": _id(i), "property": p} for i, p in _split_outputs(dep["output"])]
    first = dep["inputs"][0]
    return client._post({"output": dep["output"], "outputs": outputs if dep["output"].startswith("..") else outputs[0],
                         "inputs": items("inputs"), "state": items("state"),
                         "changedPropIds": [f"{first['id']}.{first['property']}"]})


def test_every_callback_survives_junk(client):
    failures = []
    for dep in server_callbacks(client):
        for value in JUNK:
            response = call_raw(client, dep, value)
            if response.status not in (200, 204):
                failures.append((dep["output"][:60], repr(value)[:30], response.status))
    assert not failures, failures
    ok = client.call(f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1}, {f"{ids.PROMPT}.value": "Still here?"},
                     changed=f"{ids.RUN}.n_clicks")
    assert ok.status == 200 and ok.value(ids.SEQUENCE, "data")["ids"]


@pytest.mark.parametrize("prompt, message", [
    ("", "empty"), ("   \n ", "empty"), (None, "must be text"), (12, "must be text"),
    ("a" * 250_000, "at most 200,000"), ("word " * 400, "only the last 128 tokens"),
])
def test_prompt_messages_reach_the_page(client, prompt, message):
    r = client.call(f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1}, {f"{ids.PROMPT}.value": prompt},
                    changed=f"{ids.RUN}.n_clicks")
    assert r.status == 200 and message in r.value(ids.PROMPT_MESSAGE, "children")


@pytest.mark.parametrize("prompt", ["\x00\x01\x1b[31m", "lone \ud800", "\u202eevil\u200f", "😀👩‍👩‍👧‍👦", "中文字符",
                                    "<script>alert(1)</script><img src=x onerror=alert(2)>"])
def test_odd_prompts_run(client, prompt):
    r = client.call(f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1}, {f"{ids.PROMPT}.value": prompt},
                    changed=f"{ids.RUN}.n_clicks")
    assert r.status == 200 and r.value(ids.SEQUENCE, "data")["ids"]


def test_error_message_names_no_internals(client):
    """A request that fails inside a view shows a short message: no traceback, no file paths."""
    dep = next(d for d in server_callbacks(client) if "token-chips" in d["output"] or "tokens" in d["output"])
    response = call_raw(client, dep, {"ids": [10**9]})
    text = str(response.body)
    assert response.status in (200, 204) and "Traceback" not in text and ".py" not in text
