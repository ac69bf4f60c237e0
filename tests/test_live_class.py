"""The live class's shared state (files under an fcntl lock, or Redis): codes, the teacher's secret, answers
counted once per page and question and only while the question is open, 50 concurrent answers all counted
(threads and separate processes), expiry and ending."""
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from components import live_class
from components.live_class import FileClassStore, RedisClassStore


@pytest.fixture(params=["files", "redis"])
def store(request, tmp_path):
    if request.param == "files":
        return FileClassStore(tmp_path / "classes")
    return RedisClassStore(request.getfixturevalue("redis_url"))


def open_question(store, lesson=3):
    code, secret = store.create()
    assert store.publish(code, secret, search="?view=output&lesson=3", lesson=lesson)
    return code, secret


def test_codes_secrets_and_views(store):
    code, secret = store.create()
    assert live_class.normalise_code(code.lower()[:3] + " - " + code[3:]) == code
    assert store.is_teacher(code, secret) and not store.is_teacher(code, secret + "x")
    assert not store.is_teacher(code, None) and not store.is_teacher("nonsense", secret)
    assert not store.publish(code, "forged", lesson=5)
    assert store.publish(code, secret, search="?view=heads", lesson=2)
    view = store.view(code)
    assert view["search"] == "?view=heads" and view["lesson"] == 2 and view["version"] == 1
    assert "secret" not in view and "salt" not in view
    assert not store.publish(code, secret, search="x" * (live_class.MAX_SEARCH + 1))
    for junk in [None, 12, "", "AAAAAAA", "0OOOO0", "../../etc", {"a": 1}, "x" * 10_000]:
        assert store.view(junk) is None and store.join(junk) is None


def test_answers_counted_once_and_only_while_open(store):
    code, secret = open_question(store)
    voter = store.join(code)
    assert store.answer(code, voter, 3, 1) == "counted"
    assert store.answer(code, voter, 3, 2) == "already"            # one answer per page and question
    assert store.answer(code, "f" * 16 + "." + "0" * 16, 3, 1) == "unknown"   # an id the server never issued
    assert store.answer(code, store.join(code), 4, 1) == "closed"  # not the open question
    for choice in [-1, 99, "1", 1.0, True, None]:
        assert store.answer(code, store.join(code), 3, choice) == "closed"
    assert store.publish(code, secret, revealed=3)
    assert store.answer(code, store.join(code), 3, 0) == "closed"  # revealed: closed
    assert store.counts(code, 3)[:4] == [0, 1, 0, 0]


def test_fifty_concurrent_answers_are_all_counted(store):
    code, _ = open_question(store)
    voters = [store.join(code) for _ in range(50)]
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda iv: store.answer(code, iv[1], 3, iv[0] % 4), enumerate(voters)))
    assert results == ["counted"] * 50
    assert store.counts(code, 3)[:4] == [13, 13, 12, 12]


def _answer_in_process(args):
    folder, code, voters = args
    store = FileClassStore(folder)
    return [store.answer(code, v, 3, 0) for v in voters]


def test_answers_from_several_processes_are_all_counted(tmp_path):
    """gunicorn's workers are processes: the file lock must hold across them."""
    store = FileClassStore(tmp_path / "classes")
    code, _ = open_question(store)
    voters = [store.join(code) for _ in range(50)]
    with multiprocessing.get_context("fork").Pool(5) as pool:
        results = pool.map(_answer_in_process, [(tmp_path / "classes", code, voters[i::5]) for i in range(5)])
    assert sum(r == "counted" for part in results for r in part) == 50
    assert store.counts(code, 3)[0] == 50


def test_end_and_idle_expiry(store, monkeypatch):
    code, secret = open_question(store)
    assert not store.end(code, "forged") and store.view(code) is not None
    assert store.end(code, secret) and store.view(code) is None and store.join(code) is None
    code, secret = open_question(store)
    store.answer(code, store.join(code), 3, 0)
    if isinstance(store, FileClassStore):
        monkeypatch.setattr(time, "time", lambda real=time.time: real() + live_class.IDLE_S + 1)
        assert store.view(code) is None and not store.publish(code, secret, lesson=1)
    else:   # every key of the class expires IDLE_S after the teacher's last action
        keys = list(store.redis.scan_iter(match=f"*{code}*"))
        assert len(keys) == 3 and all(0 < store.redis.ttl(k) <= live_class.IDLE_S for k in keys)


def test_classes_are_capped_and_an_ended_class_frees_its_place(store, monkeypatch):
    monkeypatch.setattr(live_class, "MAX_CLASSES", 3)
    if isinstance(store, RedisClassStore):
        monkeypatch.setattr(store, "INDEX", f"inside-gpt2:test-index:{time.time()}")
    started = [store.create() for _ in range(3)]
    with pytest.raises(live_class.ClassesFull, match="3 classes are running"):
        store.create()
    assert store.end(*started[0])
    code, secret = store.create()
    assert store.view(code) is not None
    with pytest.raises(live_class.ClassesFull):
        store.create()
    # Idle classes give their places back (on Redis their keys have expired by then).
    monkeypatch.setattr(time, "time", lambda real=time.time: real() + live_class.IDLE_S + 1)
    assert store.view(store.create()[0]) is not None
