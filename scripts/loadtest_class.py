"""The class scenario of the load test: one teacher moves through the lesson while students follow and answer,
under gunicorn on loopback, every page polling its class as the browser does (every POLL_MS).

    python scripts/loadtest.py --class                  # 1 teacher, 40 students, 60 s
    python scripts/loadtest.py --class --users 200      # the 200-followers target

Follow delay: from the teacher's action (the request that publishes the new step) to the moment a following
student's page holds it (its poll brought the new address and its page ran the step's prompt and settings).
Answer latency: a student's answer request, at each predict step. Prints p50 / p95 of both, errors, how many
answers the class counted against how many students sent, and one JSON line. Only 127.0.0.1 is contacted.
"""
from __future__ import annotations

import os
import random
import tempfile
import threading
import time

from loadtest import free_port, percentile_ms, server_memory_mb, start_server  # also puts the project on sys.path

from bench.dash_client import DashClient
from components import ids, layout
from components.lesson import ids as L
from components.lesson import steps
from components.lesson.classroom import POLL_MS

STEP_SECONDS = 6.0  # the teacher moves on every this many seconds


def membership(client, trigger, search="", written=None, current=None):
    inputs = {f"{ids.URL}.search": search}
    if trigger != ids.URL:
        inputs[f"{trigger}.n_clicks"] = 1
    r = client.call(f"{L.CLASS}.data", inputs, {f"{L.CLASS}.data": current, f"{layout.URL_WRITTEN}.data": written},
                    changed=f"{trigger}.n_clicks" if trigger != ids.URL else f"{ids.URL}.search")
    return r.value(L.CLASS, "data") if r.status == 200 else None


def publish(client, teacher, search) -> bool:
    r = client.call(f"{L.PUBLISHED}.data", {f"{layout.URL_WRITTEN}.data": search, f"{ids.URL}.search": search},
                    {f"{L.CLASS}.data": teacher}, changed=f"{layout.URL_WRITTEN}.data")
    return r.status == 200 and r.value(L.PUBLISHED, "data") == search


def teacher_loop(client, teacher, n_layer, stop_at, published, errors, lock):
    """Next every STEP_SECONDS from step 1; `published[search] = time` of each action."""
    index = 0
    while time.monotonic() < stop_at:
        search = steps.query(index % len(steps.STEPS), n_layer)
        t0 = time.monotonic()
        ok = publish(client, teacher, search)
        with lock:
            published[search] = t0
            errors["teacher"] += not ok
        index += 1
        time.sleep(max(0.0, STEP_SECONDS - (time.monotonic() - t0)))


def student_loop(client, code, seed, stop_at, published, results, lock):
    rng = random.Random(seed)
    current = membership(client, ids.URL, search=f"?class={code}")
    if not current:
        with lock:
            results["errors"] += 1
        return
    seen, search, answered = None, "", set()
    time.sleep(rng.uniform(0, POLL_MS / 1000))  # pages opened at different moments poll out of step
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        r = client.call(f"{ids.URL}.search", {f"{L.POLL}.n_intervals": 1},
                        {f"{L.CLASS}.data": current, f"{L.SEEN}.data": seen, f"{ids.URL}.search": search,
                         f"{L.CHOICE}.value": None}, changed=f"{L.POLL}.n_intervals")
        ok = r.status in (200, 204)
        new = r.value(ids.URL, "search") if r.status == 200 else None
        if r.status == 200 and r.value(L.SEEN, "data"):
            seen = r.value(L.SEEN, "data")
        if new:
            # The page applies the teacher's state: the skeleton's link restore runs the step's prompt.
            s = client.call(f"{ids.SEQUENCE}.data", {f"{ids.URL}.search": new, f"{layout.MODEL_READY}.data": True},
                            {f"{layout.URL_RESTORED}.data": True}, changed=f"{ids.URL}.search")
            ok = ok and s.status == 200
            search = new
            started = published.get(new.replace(f"&class={code}", ""))
            with lock:
                if started is not None:
                    results["follow"].append(time.monotonic() - started)
            step = steps.STEPS[int(new.split("lesson=")[1].split("&")[0]) - 1]
            if step.question is not None and new not in answered:
                answered.add(new)
                a0 = time.monotonic()
                a = client.call(f"{L.ANSWER}.children", {f"{L.CHOICE}.value": rng.randrange(4)},
                                {f"{L.CLASS}.data": current, f"{ids.URL}.search": search},
                                changed=f"{L.CHOICE}.value")
                counted = a.status == 200 and "answer is in" in str(a.value(L.ANSWER, "children"))
                with lock:
                    results["answer"].append(time.monotonic() - a0)
                    results["answers_sent"] += 1
                    results["answers_counted"] += counted
                ok = ok and a.status == 200
        with lock:
            results["polls"].append(time.monotonic() - t0)
            results["errors"] += not ok
        time.sleep(max(0.0, POLL_MS / 1000 - (time.monotonic() - t0)))


def run_class(users: int, seconds: float, model: str, workers: int, threads: int) -> dict:
    os.environ["INSIDE_GPT2_CLASS_DIR"] = tempfile.mkdtemp(prefix="inside-gpt2-loadtest-classes-")  # 0700
    port = free_port()
    server = start_server(model, workers, threads, port)
    try:
        client = wait_for_model(f"http://127.0.0.1:{port}", time.monotonic() + 300, server)
        n_layer = client_n_layer(client)
        memory_start = server_memory_mb(server.pid)
        teacher = membership(client, L.START, written=steps.query(0, n_layer))
        published, errors, lock = {}, {"teacher": 0}, threading.Lock()
        results = {"follow": [], "answer": [], "polls": [], "errors": 0, "answers_sent": 0, "answers_counted": 0}
        stop_at = time.monotonic() + seconds
        threads_ = [threading.Thread(target=teacher_loop, args=(client, teacher, n_layer, stop_at, published, errors,
                                                                lock))]
        threads_ += [threading.Thread(target=student_loop, args=(client, teacher["code"], i, stop_at, published,
                                                                 results, lock)) for i in range(users)]
        for t in threads_:
            t.start()
        for t in threads_:
            t.join(timeout=seconds + 120)
        memory_end = server_memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    follow, answer, polls = sorted(results["follow"]), sorted(results["answer"]), sorted(results["polls"])
    return {"scenario": "class", "users": users, "seconds": seconds, "workers": workers, "threads": threads,
            "steps": len(published), "follows": len(follow), "errors": results["errors"] + errors["teacher"],
            "follow_p50_ms": percentile_ms(follow, 0.5), "follow_p95_ms": percentile_ms(follow, 0.95),
            "answer_p50_ms": percentile_ms(answer, 0.5), "answer_p95_ms": percentile_ms(answer, 0.95),
            "poll_p50_ms": percentile_ms(polls, 0.5), "poll_p95_ms": percentile_ms(polls, 0.95),
            "answers_sent": results["answers_sent"], "answers_counted": results["answers_counted"],
            "memory_start_mb": round(memory_start), "memory_end_mb": round(memory_end)}


def wait_for_model(url: str, deadline: float, server) -> DashClient:
    """Until the workers answer with a sequence (their models are loaded), several times in a row."""
    while time.monotonic() < deadline and server.poll() is None:
        try:
            client = DashClient(base_url=url, timeout=60)
            answers = [client.call(f"{ids.SEQUENCE}.data", {f"{ids.RUN}.n_clicks": 1}, {f"{ids.PROMPT}.value": "hi"},
                                   changed=f"{ids.RUN}.n_clicks").value(ids.SEQUENCE, "data") for _ in range(8)]
            if all(answers):
                return client
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the server exited or did not come up in time (is the model there?)")


def client_n_layer(client) -> int:
    """The served model's block count, from the block dropdown's options."""
    r = client.call(f"{ids.BLOCK}.options", {f"{layout.MODEL_POLL}.n_intervals": 1})
    return len(r.value(ids.BLOCK, "options"))


def report(result: dict) -> str:
    return (f"class: 1 teacher and {result['users']} students for {result['seconds']:.0f} s, {result['workers']} "
            f"workers × {result['threads']} threads: {result['steps']} steps, {result['follows']} follows, "
            f"{result['errors']} errors\n"
            f"  follow delay (teacher action -> student page) p50 {result['follow_p50_ms']} ms, p95 "
            f"{result['follow_p95_ms']} ms\n"
            f"  answer latency p50 {result['answer_p50_ms']} ms, p95 {result['answer_p95_ms']} ms; answers counted "
            f"{result['answers_counted']} of {result['answers_sent']}\n"
            f"  class poll p50 {result['poll_p50_ms']} ms, p95 {result['poll_p95_ms']} ms; server memory "
            f"{result['memory_start_mb']} -> {result['memory_end_mb']} MB")
