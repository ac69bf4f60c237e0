"""A live class on the page. The teacher starts a class and projects its code, link and QR code; students join
with the link or the code and their pages follow the teacher's (address-bar state: prompt, tab, block, head,
sliders, lesson step) by polling the class once a second; they may explore on their own and follow again. At a
predict step students answer by choosing; the teacher sees how many answered and reveals the answer with the
class's answers beside the model's.

The teacher's page holds the class's secret in its session storage, never in the address bar. Every value a
page sends is checked here or in components/live_class.py: a bad code, a forged secret or page id, an answer to a
question that is not open or a second answer from one page gets a message or is ignored, and changes nothing
else."""
from __future__ import annotations

import os
from urllib.parse import urlencode, urlsplit

import segno
from dash import Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import request

from .. import ids, layout, live_class
from ..i18n import N_, _
from .ids import (ANSWER, CHOICE, CLASS, CODE_INPUT, END, FOLLOW, INFO, JOIN, MESSAGE, POLL, PUBLISHED, REVEAL,
                  SEEN, START, STATUS)
from .links import address, keep_language, lesson_index, query_of, with_param
from .panel import asked, locked_options, reveal_children

POLL_MS = 1000                 # students follow within about a second plus the page's own update
ANSWERED = {"counted": N_("Your answer is in. Your teacher will reveal the model's answer."),
            "already": N_("You have already answered this question."),
            "closed": N_("This question is not open: your teacher has moved on or revealed it."),
            "full": N_("This question has all the answers it can take."),
            "unknown": N_("This class has ended or its code is wrong.")}


def role(membership) -> str | None:
    return membership.get("role") if isinstance(membership, dict) else None


def _code(membership) -> str | None:
    return live_class.normalise_code(membership.get("code")) if isinstance(membership, dict) else None


def join_link(code: str) -> str:
    """The address students open: INSIDE_GPT2_PUBLIC_URL when set (a public name, HTTPS behind a proxy), else
    the address the teacher's browser used to reach this server."""
    base = os.environ.get("INSIDE_GPT2_PUBLIC_URL") or request.host_url
    return base.rstrip("/") + "/?" + urlencode({"class": code})


def qr_code(link: str) -> str:
    """The link as a QR code, an SVG data URI (segno, no image library needed)."""
    return segno.make(link, error="m").svg_data_uri(scale=6, border=2)


def controls() -> html.Div:
    """Start a class, or join one by its code (in the lesson bar)."""
    return html.Div([
        html.Button(_("Start a class"), id=START, n_clicks=0, className="class-start",
                    title=_("Students join with a code and follow your screen")),
        html.Label(_("Class code"), htmlFor=CODE_INPUT, className="visually-hidden"),
        dcc.Input(id=CODE_INPUT, type="text", maxLength=12, placeholder=_("Class code"), debounce=False,
                  autoComplete="off", className="class-code-input"),
        html.Button(_("Join"), id=JOIN, n_clicks=0, className="class-join"),
    ], className="class-controls")


def bar() -> html.Div:
    """The class's status and its Explore / Follow and End buttons (kept in view with the lesson panel)."""
    return html.Div([html.Span(id=STATUS, className="class-status", role="status"),
                     html.Button(_("Explore on my own"), id=FOLLOW, n_clicks=0, hidden=True, className="class-follow"),
                     html.Button(_("End the class"), id=END, n_clicks=0, hidden=True, className="class-end")],
                    className="class-bar")


def section() -> html.Div:
    """The class's code, link and QR code (teacher), its messages, and the class's stores."""
    return html.Div([
        html.Div(id=INFO, className="class-info"),
        html.Div(id=MESSAGE, className="class-message", role="alert"),
        dcc.Store(id=CLASS, storage_type="session"),
        dcc.Store(id=SEEN),
        dcc.Store(id=PUBLISHED),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=True),
    ], className="classroom")


def reveal_to_class(membership, index: int, n_choices: int) -> list[int] | None:
    """A teacher's reveal: marks step `index` revealed for the class and returns its answers per choice; None
    for any other page."""
    code = _code(membership)
    if role(membership) != "teacher" or code is None:
        return None
    store = live_class.store()
    if not store.publish(code, membership.get("secret"), revealed=index):
        return None
    return store.counts(code, index)[:n_choices]


def membership_change(trigger, search, typed_code, membership, written):
    """(new membership or no_update, message, address-bar query or no_update) for a class button or a link."""
    store = live_class.store()
    if trigger == START:
        if role(membership) == "teacher" and store.view(_code(membership)) is not None:
            raise PreventUpdate
        try:
            code, secret = store.create()
        except live_class.ClassesFull as error:
            return no_update, str(error), no_update
        store.publish(code, secret, search=written if isinstance(written, str) else "",
                      lesson=lesson_index(written))
        return {"role": "teacher", "code": code, "secret": secret}, "", no_update
    if trigger == END:
        if role(membership) == "teacher":
            if not store.end(_code(membership), membership.get("secret")) and store.view(_code(membership)):
                return None, _("This page was not the class's teacher: the class goes on."), no_update
            return None, _("The class has ended."), no_update
        return None, _("You have left the class."), with_param(search or "", "class", None)
    if trigger == FOLLOW:
        if role(membership) != "student":
            raise PreventUpdate
        return {**membership, "following": not membership.get("following")}, "", no_update
    if trigger == JOIN and role(membership) == "teacher":
        return no_update, _("End your class before joining another one."), no_update
    code_text = typed_code if trigger == JOIN else query_of(search).get("class")
    if trigger != JOIN and (code_text is None or role(membership) == "teacher"
                            or live_class.normalise_code(code_text) == _code(membership)):
        raise PreventUpdate  # a link without a class, or the class this page is already in
    code = live_class.normalise_code(code_text)
    voter = store.join(code) if code else None
    if voter is None:
        shown = (code_text or "")[:12] if isinstance(code_text, str) else ""
        return no_update, _("There is no class with the code “{shown}” (it may have ended). Check the code.").format(
            shown=shown), \
            no_update
    return {"role": "student", "code": code, "voter": voter, "following": True}, "", no_update


def class_info(membership) -> list:
    code = _code(membership)
    if role(membership) != "teacher" or code is None:
        return []
    link = join_link(code)
    children = [html.Div([_("Class code "), html.Strong(code, className="class-code")]),
                html.Div([_("Join at "), html.A(link, href=link, target="_blank", className="class-link")]),
                html.Img(src=qr_code(link), alt=_("QR code for {link}").format(link=link), className="class-qr")]
    host = urlsplit(link).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        children.append(html.P(_("Students cannot reach this machine as localhost: open this page at the machine's "
                                 "network address (served with --host 0.0.0.0), or set INSIDE_GPT2_PUBLIC_URL."),
                               className="class-warning"))
    return children


def poll_class(membership, seen, search, choice):
    """(address-bar query, status line, seen, revealed answer, membership) for one poll of the class."""
    code = _code(membership)
    if code is None:
        raise PreventUpdate
    store = live_class.store()
    shared = store.view(code)
    if shared is None:
        gone = with_param(search, "class", None) if isinstance(search, str) and "class=" in search else no_update
        return gone, _("This class has ended."), None, no_update, None
    seen = seen if isinstance(seen, dict) else {}
    lesson = shared["lesson"]
    step = _("step {step}").format(step=lesson + 1) if isinstance(lesson, int) else _("no lesson step")
    question = asked(lesson) if isinstance(lesson, int) else None
    if role(membership) == "teacher":
        answered = sum(store.counts(code, lesson)) if question else 0
        status = " · ".join([_("Class {code}").format(code=code), step]
                            + ([_("{n} answered").format(n=answered)] if question else []))
        return no_update, status, no_update, no_update, no_update
    following = bool(membership.get("following"))
    status = _("Class {code}").format(code=code) + " · " + (
        _("following the teacher") if following else _("exploring (the teacher is on {step})").format(step=step))
    new_search = no_update
    followed = keep_language(with_param(shared["search"], "class", code), search) if shared["search"] else None
    if following and followed and shared["version"] != seen.get("version") and followed != search:
        new_search = followed
    # The reveal this page has shown; a page that is elsewhere (exploring, or just told to follow) has shown none,
    # so it shows the teacher's reveal once it is back on the revealed step.
    shown = seen.get("revealed") if lesson_index(search) == lesson and new_search is no_update else None
    answer = no_update
    if question and shared["revealed"] == lesson and shown != lesson and lesson_index(search) == lesson \
            and new_search is no_update:
        answer = reveal_children(question, choice, store.counts(code, lesson)[:len(question["choices"])])
        shown = lesson
    # Exploring pages keep the version they last followed, so following again applies the teacher's state at once.
    applied = shared["version"] if following else seen.get("version")
    return new_search, status, {"version": applied, "revealed": shown}, answer, no_update


def register(app) -> None:
    @app.callback(Output(CLASS, "data"), Output(MESSAGE, "children"),
                  Output(ids.URL, "search", allow_duplicate=True), Output(ids.URL, "href", allow_duplicate=True),
                  Input(START, "n_clicks"), Input(END, "n_clicks"), Input(FOLLOW, "n_clicks"),
                  Input(JOIN, "n_clicks"), Input(CODE_INPUT, "n_submit"), Input(ids.URL, "search"),
                  State(CODE_INPUT, "value"), State(CLASS, "data"), State(layout.URL_WRITTEN, "data"),
                  State(ids.URL, "pathname"), prevent_initial_call="initial_duplicate")
    def membership(_unused, __, ___, ____, _____, search, typed_code, current, written, pathname):
        trigger = callback_context.triggered_id
        if trigger in (START, END, FOLLOW, JOIN, CODE_INPUT) and not callback_context.triggered[0].get("value"):
            raise PreventUpdate  # a button re-rendered, not clicked
        trigger = JOIN if trigger == CODE_INPUT else trigger  # Enter in the code box joins too
        new, message, new_search = membership_change(trigger, search, typed_code, current, written)
        return new, message, *address(new_search, pathname, search)

    @app.callback(Output(INFO, "children"), Output(POLL, "disabled"), Output(START, "hidden"),
                  Output(END, "hidden"), Output(END, "children"), Output(FOLLOW, "hidden"),
                  Output(FOLLOW, "children"), Output(STATUS, "children"), Input(CLASS, "data"))
    def show_membership(current):
        kind = role(current)
        if kind not in ("teacher", "student") or _code(current) is None:
            return [], True, False, True, _("End the class"), True, "", ""
        following = kind == "student" and current.get("following")
        return (class_info(current), False, True, False,
                _("End the class") if kind == "teacher" else _("Leave the class"),
                kind != "student", _("Explore on my own") if following else _("Follow the teacher"),
                _("Class {value}").format(value=_code(current)))

    @app.callback(Output(ids.URL, "search", allow_duplicate=True), Output(ids.URL, "href", allow_duplicate=True),
                  Output(STATUS, "children", allow_duplicate=True), Output(SEEN, "data"),
                  Output(ANSWER, "children", allow_duplicate=True), Output(CLASS, "data", allow_duplicate=True),
                  Input(POLL, "n_intervals"), State(CLASS, "data"), State(SEEN, "data"), State(ids.URL, "search"),
                  State(CHOICE, "value"), State(ids.URL, "pathname"), prevent_initial_call=True)
    def poll(_unused, current, seen, search, choice, pathname):
        new_search, *rest = poll_class(current, seen, search, choice)
        return *address(new_search, pathname, search), *rest

    @app.callback(Output(PUBLISHED, "data"), Input(layout.URL_WRITTEN, "data"), Input(ids.URL, "search"),
                  State(CLASS, "data"), prevent_initial_call=True)
    def publish(written, search, current):
        """The teacher's page state, whenever it changes, for the class to follow."""
        if role(current) != "teacher":
            raise PreventUpdate
        shown = written if callback_context.triggered_id == layout.URL_WRITTEN else search
        if not isinstance(shown, str) or "view=" not in shown:
            raise PreventUpdate
        shown = with_param(shown, "class", None)
        ok = live_class.store().publish(_code(current), current.get("secret"), search=shown, lesson=lesson_index(shown))
        return shown if ok else None

    @app.callback(Output(ANSWER, "children", allow_duplicate=True),
                  Output(CHOICE, "options", allow_duplicate=True),
                  Input(CHOICE, "value"), State(CLASS, "data"), State(ids.URL, "search"), prevent_initial_call=True)
    def answer(choice, current, search):
        """A student's choice goes to the class at once (no name, nothing else): counted once per page."""
        if role(current) != "student" or choice is None:
            raise PreventUpdate
        result = live_class.store().answer(_code(current), current.get("voter"), lesson_index(search), choice)
        if result not in ("counted", "already"):
            return _(ANSWERED.get(result, ANSWERED["unknown"])), no_update
        index = lesson_index(search)
        return _(ANSWERED[result]), locked_options(asked(index)) if index is not None and asked(index) else no_update

    @app.callback(Output(ANSWER, "children", allow_duplicate=True), Output(CHOICE, "options", allow_duplicate=True),
                  Input(REVEAL, "n_clicks"), State(CHOICE, "value"), State(ids.URL, "search"), State(CLASS, "data"),
                  prevent_initial_call=True)
    def reveal(clicks, choice, search, current):
        """A learner on their own sees the answer once committed to one; a teacher reveals it to the whole class,
        with the class's answers beside the model's; a student waits for the teacher."""
        index = lesson_index(search)
        question = asked(index) if index is not None else None
        if not clicks or question is None or role(current) == "student" or (role(current) is None and choice is None):
            raise PreventUpdate
        if role(current) != "teacher":
            return reveal_children(question, choice), locked_options(question)
        counts = reveal_to_class(current, index, len(question["choices"]))
        if counts is None:
            return _("This class has ended: the answer is shown on this page only."), no_update
        return reveal_children(question, choice, counts), locked_options(question)
