"""Call a Dash app's callbacks the way the browser does (POST /_dash-update-component), for benchmarks, the
load test and the tests that send hand-crafted (hostile) values past the page's controls.

Works against a Flask test client (in-process) or a server URL, from the app's own dependency list."""
from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass


def _split_outputs(output: str) -> list[tuple[str, str]]:
    """'..a.children...b.figure..' or 'a.children' -> [(id, property), ...]; ids may be JSON (pattern ids)."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [tuple(part.rsplit(".", 1)) for part in parts]


def _id(raw: str):
    return json.loads(raw) if raw.startswith("{") else raw


@dataclass
class Response:
    status: int
    body: dict | None
    nbytes: int

    def value(self, component_id: str, prop: str):
        return (self.body or {}).get("response", {}).get(component_id, {}).get(prop)


class DashClient:
    def __init__(self, test_client=None, base_url: str | None = None, timeout: float = 120):
        self.test_client, self.base_url, self.timeout = test_client, (base_url or "").rstrip("/"), timeout
        self.dependencies = self._get("/_dash-dependencies")

    def _get(self, path: str):
        if self.test_client is not None:
            return json.loads(self.test_client.get(path).data)
        with urllib.request.urlopen(self.base_url + path, timeout=self.timeout) as r:
            return json.loads(r.read())

    def _post(self, payload: dict) -> Response:
        data = json.dumps(payload).encode()
        if self.test_client is not None:
            r = self.test_client.post("/_dash-update-component", data=data, content_type="application/json")
            return Response(r.status_code, json.loads(r.data) if r.data and r.status_code == 200 else None, len(r.data))
        request = urllib.request.Request(self.base_url + "/_dash-update-component", data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:
                body = r.read()
                return Response(r.status, json.loads(body) if body else None, len(body))
        except urllib.error.HTTPError as error:
            return Response(error.code, None, 0)

    def find(self, output: str, trigger: str | None = None) -> dict:
        """The callback whose outputs include `output` ("id.property") and, when several do, whose inputs
        include `trigger`."""
        matches = [d for d in self.dependencies
                   if any(f"{i}.{p.split('@')[0]}" == output for i, p in _split_outputs(d["output"]))]
        if len(matches) > 1 and trigger:
            matches = [d for d in matches if any(f"{i['id']}.{i['property']}" == trigger for i in d["inputs"])]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} callbacks output {output} (trigger {trigger})")
        return matches[0]

    def call(self, output: str, inputs: dict, state: dict | None = None, changed: str | None = None) -> Response:
        """Fire the callback that outputs `output`, with values for its inputs/state ("id.property": value);
        any not given are sent as None (pattern-matching ALL ones as an empty list)."""
        changed = changed or next(iter(inputs), "")
        dep = self.find(output, changed)
        values = {**inputs, **(state or {})}

        def items(kind):
            out = []
            for item in dep[kind]:
                key = f"{item['id']}.{item['property']}"
                if item["id"].startswith("{"):
                    out.append([])  # a pattern-matching input: no components of that kind
                else:
                    out.append({"id": item["id"], "property": item["property"], "value": values.get(key)})
            return out

        outputs = [{"id": _id(i), "property": p} for i, p in _split_outputs(dep["output"])]
        payload = {"output": dep["output"], "outputs": outputs if dep["output"].startswith("..") else outputs[0],
                   "inputs": items("inputs"), "state": items("state"),
                   "changedPropIds": [changed]}
        return self._post(payload)
