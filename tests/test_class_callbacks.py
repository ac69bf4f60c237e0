"""The live class's callbacks, called as the browser calls them (and as a hostile page could): starting, joining
by link or code, following, answering, revealing, leaving and ending, and every bad input item 5 of issue 12
lists: wrong or expired codes, forged teacher actions, answers to a question that is not open, answers flooded
from one page, forged or oversized values. Each gets a message or is ignored and changes nothing else."""
import pytest

from app import create_app
from bench.dash_client import DashClient
from components import ids, layout, live_class
from components.lesson import ids as L
from components.lesson import steps

WORDS_IN_PIECES = next(i for i, s in enumerate(steps.STEPS) if s.title == "Words in pieces")


@pytest.fixture(scope="module")
def client(tiny_model, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setattr(live_class, "_store",
                               live_class.FileClassStore(tmp_path_factory.mktemp("classes") / "c"))
    return DashClient(create_app(runtime=tiny_model).server.test_client())


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def n_layer(tiny_model):
    return tiny_model.config.n_layer


def membership(client, trigger, search="", current=None, code=None, written=None):
    prop = "n_submit" if trigger == L.CODE_INPUT else "n_clicks"
    inputs = {f"{ids.URL}.search": search}
    if trigger != ids.URL:
        inputs[f"{trigger}.{prop}"] = 1
    r = client.call(f"{L.CLASS}.data", inputs, {f"{L.CODE_INPUT}.value": code, f"{L.CLASS}.data": current,
                                                f"{layout.URL_WRITTEN}.data": written},
                    changed=f"{trigger}.{prop}" if trigger != ids.URL else f"{ids.URL}.search")
    assert r.status in (200, 204)
    return r


def start(client, n_layer, step=WORDS_IN_PIECES):
    teacher = membership(client, L.START, written=steps.query(step, n_layer)).value(L.CLASS, "data")
    assert teacher["role"] == "teacher" and live_class.normalise_code(teacher["code"])
    return teacher


def join(client, code):
    return membership(client, ids.URL, search=f"?view=tokens&class={code}").value(L.CLASS, "data")


def poll(client, current, seen=None, search="", choice=None):
    r = client.call(f"{ids.URL}.search", {f"{L.POLL}.n_intervals": 1},
                    {f"{L.CLASS}.data": current, f"{L.SEEN}.data": seen, f"{ids.URL}.search": search,
                     f"{L.CHOICE}.value": choice}, changed=f"{L.POLL}.n_intervals")
    assert r.status in (200, 204)
    return r


def answer(client, current, search, choice):
    r = client.call(f"{L.ANSWER}.children", {f"{L.CHOICE}.value": choice},
                    {f"{L.CLASS}.data": current, f"{ids.URL}.search": search}, changed=f"{L.CHOICE}.value")
    assert r.status in (200, 204)
    return r


def reveal(client, current, search, choice=None):
    r = client.call(f"{L.ANSWER}.children", {f"{L.REVEAL}.n_clicks": 1},
                    {f"{L.CHOICE}.value": choice, f"{ids.URL}.search": search, f"{L.CLASS}.data": current},
                    changed=f"{L.REVEAL}.n_clicks")
    assert r.status in (200, 204)
    return r


def publish(client, current, written):
    r = client.call(f"{L.PUBLISHED}.data", {f"{layout.URL_WRITTEN}.data": written, f"{ids.URL}.search": written},
                    {f"{L.CLASS}.data": current}, changed=f"{layout.URL_WRITTEN}.data")
    assert r.status in (200, 204)
    return r


def test_a_whole_class(client, n_layer):
    teacher = start(client, n_layer)
    code = teacher["code"]
    info = client.call(f"{L.INFO}.children", {f"{L.CLASS}.data": teacher})
    text = str(info.body)
    assert code in text and f"/?class={code}" in text and "data:image/svg+xml" in text
    assert teacher["secret"] not in text  # the projected code, link and QR code never carry the secret

    student = join(client, code)
    assert student["role"] == "student" and student["following"] and "secret" not in student
    search = steps.query(WORDS_IN_PIECES, n_layer)
    followed = poll(client, student)
    assert followed.value(ids.URL, "search") == search + f"&class={code}"
    seen = followed.value(L.SEEN, "data")
    assert poll(client, student, seen, search).status == 204 or \
        poll(client, student, seen, search).value(ids.URL, "search") is None  # nothing new: no change

    assert "answer is in" in str(answer(client, student, search, 1).value(L.ANSWER, "children"))
    assert "already answered" in str(answer(client, student, search, 2).value(L.ANSWER, "children"))
    assert "1 answered" in str(poll(client, teacher).value(L.STATUS, "children"))

    shown = reveal(client, teacher, search)
    assert "lesson-class-figure" in str(shown.body)
    revealed = poll(client, student, seen, search + f"&class={code}", choice=1)
    assert "explanation" not in str(revealed.body) and "model" in str(revealed.value(L.ANSWER, "children"))
    assert "not open" in str(answer(client, {**student, "voter": live_class.store().join(code)}, search, 0)
                             .value(L.ANSWER, "children"))

    # Exploring: the teacher moves on, the student's page stays; following again catches up.
    exploring = membership(client, L.FOLLOW, current=student).value(L.CLASS, "data")
    assert exploring["following"] is False
    moved = steps.query(WORDS_IN_PIECES + 2, n_layer)
    assert publish(client, teacher, moved).value(L.PUBLISHED, "data") == moved
    assert poll(client, exploring, seen, search).value(ids.URL, "search") is None
    back = membership(client, L.FOLLOW, current=exploring).value(L.CLASS, "data")
    assert poll(client, back, seen, search).value(ids.URL, "search") == moved + f"&class={code}"

    left = membership(client, L.END, search=search + f"&class={code}", current=back)
    assert left.value(L.CLASS, "data") is None and "class=" not in left.value(ids.URL, "search")
    assert live_class.store().view(code) is not None   # a student leaving ends nothing
    ended = membership(client, L.END, current=teacher)
    assert ended.value(L.CLASS, "data") is None and live_class.store().view(code) is None
    gone = poll(client, student, seen, search + f"&class={code}")
    assert "ended" in str(gone.value(L.STATUS, "children")) and gone.value(L.CLASS, "data") is None


def test_wrong_and_expired_codes_get_a_message(client, n_layer):
    for typed in ["", "nope", "ZZZZZZ", "x" * 5000, "<script>", "A\x00B", None, 12, ["ABCDEF"]]:
        r = membership(client, L.JOIN, code=typed)
        assert r.value(L.CLASS, "data") is None
        assert "no class" in str(r.value(L.MESSAGE, "children"))
    teacher = start(client, n_layer)
    membership(client, L.END, current=teacher)
    assert "no class" in str(membership(client, L.CODE_INPUT, code=teacher["code"]).value(L.MESSAGE, "children"))


def test_forged_teacher_actions_change_nothing(client, n_layer):
    teacher = start(client, n_layer)
    code = teacher["code"]
    before = live_class.store().view(code)
    forged = [{**teacher, "secret": "guess"}, {**teacher, "secret": None}, {**teacher, "secret": ["x"]},
              {"role": "teacher", "code": code}, {**join(client, code), "role": "teacher"}]
    search = steps.query(WORDS_IN_PIECES, n_layer)
    for page in forged:
        assert publish(client, page, steps.query(0, n_layer)).value(L.PUBLISHED, "data") is None
        assert "lesson-class-figure" not in str(reveal(client, page, search).body)
        r = membership(client, L.END, current=page)
        assert r.value(L.CLASS, "data") is None   # the forging page forgets it; the class goes on
    assert live_class.store().view(code) == before
    # A student's page cannot reveal to the class (nor see the answer early by clicking).
    assert reveal(client, join(client, code), search, choice=1).status == 204
    # A teacher cannot lose its class by joining another one.
    assert "End your class" in str(membership(client, L.JOIN, current=teacher, code=code).value(L.MESSAGE, "children"))


def test_answers_flooded_forged_or_to_closed_questions(client, n_layer):
    teacher = start(client, n_layer)
    code = teacher["code"]
    student = join(client, code)
    search = steps.query(WORDS_IN_PIECES, n_layer)
    for _ in range(20):   # one page, many answers: one counted
        answer(client, student, search, 0)
    assert live_class.store().counts(code, WORDS_IN_PIECES)[0] == 1
    for bad in [{**student, "voter": "0" * 16 + "." + "0" * 16}, {**student, "voter": None},
                {**student, "voter": "x" * 100_000}, {**student, "code": "ZZZZZZ"}, {"role": "student"}]:
        answer(client, bad, search, 1)
    wrong_step = steps.query(WORDS_IN_PIECES + 1, n_layer)
    answer(client, join(client, code), wrong_step, 1)          # not the open question
    for choice in [-1, 99, "1", 1.5, True, [1], {"a": 1}]:
        answer(client, join(client, code), search, choice)
    assert live_class.store().counts(code, WORDS_IN_PIECES)[:4] == [1, 0, 0, 0]
    # A learner on their own answers nothing to any class.
    assert answer(client, None, search, 1).status == 204


def test_oversized_and_junk_state_is_ignored(client, n_layer):
    teacher = start(client, n_layer)
    huge = "?view=tokens&prompt=" + "a" * 10_000
    assert publish(client, teacher, huge).value(L.PUBLISHED, "data") is None
    junk_pages = [None, 7, "x", [], {"role": "student", "code": None}, {"role": "teacher", "code": "../../etc"},
                  {"role": "student", "code": teacher["code"], "following": "yes", "voter": 5}]
    for page in junk_pages:
        for seen in [None, 5, {"version": "x"}, {"revealed": []}]:
            poll(client, page, seen, search=huge, choice="junk")
        membership(client, L.FOLLOW, current=page)
        client.call(f"{L.INFO}.children", {f"{L.CLASS}.data": page})
    assert live_class.store().view(teacher["code"])["search"] == steps.query(WORDS_IN_PIECES, n_layer)


def test_join_link_uses_a_configured_public_address(client, n_layer, monkeypatch):
    monkeypatch.setenv("INSIDE_GPT2_PUBLIC_URL", "https://gpt2.school.example/")
    teacher = start(client, n_layer)
    text = str(client.call(f"{L.INFO}.children", {f"{L.CLASS}.data": teacher}).body)
    assert f"https://gpt2.school.example/?class={teacher['code']}" in text and "localhost as" not in text


def test_a_reveal_missed_while_exploring_shows_after_following_again(client, n_layer):
    teacher = start(client, n_layer)
    code = teacher["code"]
    student = join(client, code)
    search = steps.query(WORDS_IN_PIECES, n_layer) + f"&class={code}"
    seen = poll(client, student).value(L.SEEN, "data")
    exploring = membership(client, L.FOLLOW, current=student).value(L.CLASS, "data")
    elsewhere = steps.query(WORDS_IN_PIECES + 3, n_layer) + f"&class={code}"
    assert "lesson-class-figure" in str(reveal(client, teacher, steps.query(WORDS_IN_PIECES, n_layer)).body)
    missed = poll(client, exploring, seen, elsewhere)
    assert missed.value(ids.URL, "search") is None and not missed.value(L.ANSWER, "children")
    seen = missed.value(L.SEEN, "data")

    back = membership(client, L.FOLLOW, current=exploring).value(L.CLASS, "data")
    followed = poll(client, back, seen, elsewhere)
    assert followed.value(ids.URL, "search") == search
    shown = poll(client, back, followed.value(L.SEEN, "data"), search)
    assert "model" in str(shown.value(L.ANSWER, "children"))
    again = poll(client, back, shown.value(L.SEEN, "data"), search)  # shown once, not redrawn every second
    assert again.status == 204 or again.value(L.ANSWER, "children") is None
