"""The lesson without a browser: every step puts the page in the state it claims (through the page's own
callbacks), highlights an element that exists, has a task that its own state does not satisfy and a changed
state does; every predict question's answer equals what this test computes itself from the trace or the logits
(tiny and full-size random models)."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app import create_app
from bench.dash_client import DashClient
from components import ids, layout
from components.lesson import ids as lesson_ids
from components.lesson import questions, steps, tasks
from components.lesson.links import lesson_index
from components.views import VIEWS


@pytest.fixture(scope="module")
def client(tiny_model):
    return DashClient(create_app(runtime=tiny_model).server.test_client())


def layout_ids(component) -> set:
    found = set()
    stack = [component]
    while stack:
        node = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend(node)
            continue
        if isinstance(getattr(node, "id", None), str):
            found.add(node.id)
        for prop in ("children",):
            child = getattr(node, prop, None)
            if child is not None and not isinstance(child, str):
                stack.append(child)
    return found


def test_at_least_fifteen_steps_in_pipeline_order():
    assert len(steps.STEPS) >= 15
    order = [value for value, _, _ in VIEWS]
    positions = [order.index(step.state["view"]) for step in steps.STEPS]
    assert positions == sorted(positions)
    assert sum(step.question is not None for step in steps.STEPS) >= 6
    for step in steps.STEPS:
        sentences = len(re.findall(r"[.!?](\s|$)", step.text))
        assert 2 <= sentences <= 4, step.title


def test_every_highlighted_element_is_on_the_page():
    present = layout_ids(layout.page())
    assert {step.highlight for step in steps.STEPS} <= present


def navigate(client, trigger, search):
    r = client.call(f"{ids.URL}.search", {f"{trigger}.n_clicks": 1, f"{ids.URL}.search": search,
                                          f"{layout.MODEL_READY}.data": True}, changed=f"{trigger}.n_clicks")
    assert r.status == 200
    return r.value(ids.URL, "search")


def apply_link(client, search):
    """What the page's link restore (layout.run_prompt) does with an address-bar query."""
    r = client.call(f"{ids.SEQUENCE}.data", {f"{ids.URL}.search": search, f"{layout.MODEL_READY}.data": True},
                    {f"{layout.URL_RESTORED}.data": True, f"{ids.PROMPT}.value": "something else"},
                    changed=f"{ids.URL}.search")
    assert r.status == 200
    return r


def test_every_step_sets_the_state_it_claims(client, tiny_model):
    """Next from the first step to the last: each query the buttons write, applied by the page's own link
    restore, gives the step's prompt, tab, block, head and sliders; Back returns."""
    n_layer = tiny_model.config.n_layer
    search = navigate(client, lesson_ids.OPEN, "?view=tokens")
    for index, step in enumerate(steps.STEPS):
        if index:
            search = navigate(client, lesson_ids.NEXT, search)
        assert lesson_index(search) == index
        claimed = {**steps.DEFAULT_STATE, **step.state}
        claimed["block"] = n_layer - 1 if claimed["block"] == steps.LAST else min(claimed["block"], n_layer - 1)
        r = apply_link(client, search)
        assert r.value(ids.PROMPT, "value") == claimed["prompt"]
        assert r.value(ids.SEQUENCE, "data")["ids"] == tiny_model.tokenizer.encode(claimed["prompt"])
        for key, control in layout.CONTROL_IDS.items():
            assert r.value(control, "value") == claimed[key], (step.title, key)
    assert navigate(client, lesson_ids.NEXT, search) == search  # the last step stays the last
    assert lesson_index(navigate(client, lesson_ids.BACK, search)) == len(steps.STEPS) - 2
    assert lesson_index(navigate(client, lesson_ids.CLOSE, search)) is None


def test_a_bare_link_opens_its_step_with_the_step_state(client, tiny_model):
    search = client.call(f"{ids.URL}.search", {f"{ids.URL}.search": "?lesson=14", f"{layout.MODEL_READY}.data": True},
                         changed=f"{layout.MODEL_READY}.data").value(ids.URL, "search")
    assert search == steps.query(13, tiny_model.config.n_layer)
    r = client.call(f"{lesson_ids.PANEL}.hidden", {f"{ids.URL}.search": search, f"{layout.MODEL_READY}.data": True})
    assert r.value(lesson_ids.PANEL, "hidden") is False
    assert "Step 14 of" in str(r.value(lesson_ids.PROGRESS, "children"))
    assert steps.STEPS[13].title in str(r.value(lesson_ids.BODY, "children"))
    for junk in ["?lesson=0", "?lesson=999", "?lesson=abc", "?lesson=" + "9" * 5000, "?lesson=-3"]:
        r = client.call(f"{lesson_ids.PANEL}.hidden", {f"{ids.URL}.search": junk, f"{layout.MODEL_READY}.data": True})
        assert r.status == 200 and r.value(lesson_ids.PANEL, "hidden") is True


def done_states(tiny_model, full_trace_head):
    """For each step (by title), changes to its own state that complete its task."""
    enc = tiny_model.tokenizer.encode
    return {
        "Text becomes tokens": {"prompt": "My own words", "ids": enc("My own words")},
        "Words in pieces": {"prompt": "antidisestablishmentarianism", "ids": enc(" antidisestablishmentarianism")},
        "Token embeddings": {"prompt": "a dog and a dog", "ids": enc("a dog and a dog")},
        "Position embeddings": {"ids": list(range(12))},
        "Queries, keys and values": {"head": 1},
        "Scores, scaling, the mask, softmax": {"block": tiny_model.config.n_layer - 1},
        "The weighted sum, and heads put together": {"block": 0},
        "All heads: find a previous-token head": {"view": "attention", "block": full_trace_head[0],
                                                  "head": full_trace_head[1]},
        "The MLP": {"block": tiny_model.config.n_layer - 1},
        "The residual stream": {"block": 1},
        "LayerNorm": {"block": tiny_model.config.n_layer - 1},
        "The logit lens": {"prompt": "Other words", "ids": enc("Other words")},
        "The next-token distribution": {"top_n": 30},
        "Temperature": {"temperature": 0.3},
        "Top-k": {"top_k": 5},
        "Top-p (nucleus)": {"top_p": 0.8},
        "Generation, one token at a time": {"generation": {"live": False, "use_cache": True, "new_ids": [5]}},
        "Prefill, then decode": {"generation": {"live": False, "use_cache": True, "new_ids": [5],
                                                "history": [{"use_cache": False, "new_tokens": 20}]}},
    }


def test_every_task_is_open_on_its_step_and_done_on_a_changed_state(tiny_model):
    def trace(ids_):
        return tiny_model.trace(ids_)
    enc = tiny_model.tokenizer.encode
    # The previous-token head of the attention steps' prompt, found here from the patterns.
    t = trace(enc(steps.ATTN_PROMPT))
    shares = np.array([[np.mean([t[f"blocks.{l}.attn.hook_pattern"][h, i, i - 1].item() for i in range(1, len(t.tokens))])
                        for h in range(tiny_model.config.n_head)] for l in range(tiny_model.config.n_layer)])
    best = np.unravel_index(shares.argmax(), shares.shape)
    table = done_states(tiny_model, (int(best[0]), int(best[1])))
    assert set(table) == {step.title for step in steps.STEPS}
    for step in steps.STEPS:
        settings = steps.settings(step, tiny_model.config.n_layer)
        context = tasks.Context(settings, tiny_model.config.n_layer, trace, tiny_model.tokenizer.tokens)
        own = {**settings, "ids": enc(settings["prompt"]), "generation": None}
        assert not step.task.check(own, context), step.title
        assert step.task.check({**own, **table[step.title]}, context), step.title


# ---------------------------------------------------------------------------------------------------------
# Predict questions: the test's own computation of each answer.

def expected_token_count(runtime, word):
    return min(len(runtime.tokenizer.encode(word)), 4) - 1


def in_bins(value, edges):
    return sum(value >= e for e in edges)


def stage_name(stage):
    return "embedding" if stage == 0 else f"block {stage}"


def label_covers(label, stage):
    names = label.split(" to ")
    index = lambda name: 0 if name == "embedding" else int(name.split()[1])  # noqa: E731
    return index(names[0]) <= stage <= index(names[-1])


def check_question(runtime, question):
    asked = questions.build(question, runtime, runtime.trace)
    params = question.params
    choices, answer = asked["choices"], asked["answer"]
    assert 2 <= len(choices) <= 8 and len(asked["model_values"]) == len(choices) and asked["explanation"]
    if question.kind == "token_count":
        assert answer == expected_token_count(runtime, params["word"])
        return
    trace = runtime.trace(runtime.tokenizer.encode(params["prompt"]))
    logits = trace.logits[-1].double()
    if question.kind == "previous_head":
        values = []
        for choice in choices:
            block, head = [int(n) - 1 for n in re.findall(r"\d+", choice)]
            p = trace[f"blocks.{block}.attn.hook_pattern"][head].numpy()
            values.append(np.mean([p[i, i - 1] for i in range(1, p.shape[0])]))
        assert answer == int(np.argmax(values))
    elif question.kind == "residual_growth":
        first = trace["blocks.0.hook_resid_pre"][-1].norm()
        last = trace[f"blocks.{runtime.config.n_layer - 1}.hook_resid_post"][-1].norm()
        assert answer == in_bins(float(last / first), [0.8, 1.25, 4.0])
    elif question.kind == "lens_first_block":
        ln = runtime.model.ln_f
        final = int(logits.argmax())
        streams = [trace["blocks.0.hook_resid_pre"][-1]] + [trace[f"blocks.{l}.hook_resid_post"][-1]
                                                             for l in range(runtime.config.n_layer)]
        with torch.no_grad():
            guesses = [int((F.layer_norm(x, x.shape, ln.weight, ln.bias, ln.eps) @ runtime.model.wte.weight.T).argmax())
                       for x in streams]
        first = guesses.index(final)
        assert label_covers(choices[answer], first)
        assert sum(label_covers(c, first) for c in choices) == 1
    elif question.kind == "next_top":
        top4 = torch.topk(logits, 4).indices.tolist()
        texts = [runtime.tokenizer.token(i).text for i in top4]
        assert sorted(choices) == sorted(texts) and choices[answer] == texts[0]
        assert np.allclose(sorted(asked["model_values"]), sorted(logits.softmax(-1)[top4].tolist()))
    elif question.kind == "temperature_top":
        p = (logits / params["temperature"]).softmax(-1).max().item()
        assert answer == in_bins(p, [0.25, 0.5, 0.75])
    elif question.kind == "top_p_count":
        cumulative = np.cumsum(np.sort(logits.softmax(-1).numpy())[::-1])
        kept = int(np.searchsorted(cumulative, params["top_p"])) + 1
        assert answer == in_bins(kept, [2, 11, 101])
    else:
        raise AssertionError(f"no independent check for {question.kind}")


@pytest.mark.parametrize("model_name", ["tiny_model", "full_model"])
def test_every_predict_answer_matches_the_tests_own_computation(model_name, request):
    runtime = request.getfixturevalue(model_name)
    asked = [step.question for step in steps.STEPS if step.question is not None]
    assert len({q.kind for q in asked}) >= 6
    for question in asked:
        check_question(runtime, question)
