"""The lesson on the page: a panel above the views with the step's text, equation, task and question, Back /
Next and progress. The address bar is the lesson's state: `?...&lesson=N` opens step N, and a step is applied by
writing its query there, which the page skeleton's own link restore turns into prompt, tab, block, head and
sliders (the same path a shared link takes)."""
from __future__ import annotations

import json

from dash import Input, Output, State, callback_context, dcc, html
from dash.exceptions import PreventUpdate

from .. import common, figure_text, generation, i18n, ids, layout, state
from ..i18n import _
from . import figures, questions, steps, tasks
from .links import address, lesson_index, with_param
from .ids import (ANSWER, BACK, BODY, CHOICE, CLASS, CLASS_FIGURE_TEXT, CLOSE, HIGHLIGHTED, NEXT, OPEN, PANEL,
                  PROGRESS, QUESTION, QUESTION_BOX, REVEAL, SHOWN, TASK)


@state.views_cache.memoize()
def _asked(_model_key, _language, index) -> dict:
    runtime = state.model.get()
    return questions.build(steps.STEPS[index].question, runtime, state.trace_for)


def asked(index: int) -> dict | None:
    """Step `index`'s question with its answer, computed from the loaded model (once per model, shared by every
    worker: a class of 200 asks the same question at the same moment), in the reader's language."""
    return None if steps.STEPS[index].question is None else _asked(state.model_key(), i18n.current_language(), index)


def open_button() -> html.Button:
    return html.Button(_("Lesson"), id=OPEN, n_clicks=0, className="lesson-open",
                       title=_("A guided tour of the model, step by step, with questions"))


def section() -> html.Section:
    return html.Section([
        html.Div([html.Span(id=PROGRESS, className="lesson-progress"),
                  html.Button("×", id=CLOSE, n_clicks=0, className="lesson-close", title=_("Close the lesson"))],
                 className="lesson-top"),
        html.Div(id=BODY),
        html.Div(id=TASK, className="lesson-task", role="status"),
        html.Div([
            html.Div(id=QUESTION, className="lesson-question-text"),
            dcc.RadioItems(id=CHOICE, options=[], value=None, className="lesson-choices"),
            html.Button(_("Reveal"), id=REVEAL, n_clicks=0, disabled=True, className="lesson-reveal"),
            html.Div(id=ANSWER, className="lesson-answer", role="status", **{"aria-live": "polite"}),
        ], id=QUESTION_BOX, className="lesson-question", hidden=True),
        html.Div([html.Button(_("← Back"), id=BACK, n_clicks=0, className="lesson-nav"),
                  html.Button(_("Next →"), id=NEXT, n_clicks=0, className="lesson-nav lesson-next")],
                 className="lesson-navigation"),
        dcc.Store(id=HIGHLIGHTED),
        dcc.Store(id=SHOWN),
    ], id=PANEL, className="lesson-panel", hidden=True, **{"aria-label": _("Lesson")})


def step_body(index: int, pretrained: bool) -> list:
    step = steps.STEPS[index]
    children = [html.H2(_(step.title), className="lesson-title"), common.explanation(_(step.text), step.equation)]
    if step.trained_only and not pretrained:
        children.append(html.P(_(step.trained_only), className="lesson-untrained"))
    return children


def page_state(sequence, view, block, head, temperature, top_k, top_p, top_n, record) -> dict:
    sequence = sequence if isinstance(sequence, dict) else {}
    return {"prompt": sequence.get("prompt"), "ids": sequence.get("ids") if isinstance(sequence.get("ids"), list)
            else [], "view": view, "block": block, "head": head, "temperature": temperature, "top_k": top_k,
            "top_p": top_p, "top_n": top_n, "generation": record}


def reveal_children(question: dict, choice, counts: list[int] | None = None) -> list:
    """The model's answer, whether the learner's choice was it, the one-sentence explanation and, in a class,
    the class's answers beside the model's own distribution."""
    answer = question["choices"][question["answer"]]
    if choice == question["answer"]:
        verdict = html.Strong(_("✓ Right: ") + answer, className="lesson-right")
    else:
        verdict = html.Strong(_("The model's answer: ") + answer, className="lesson-wrong")
    children = [verdict, html.P(question["explanation"])]
    if counts is not None:
        # A figure box described by its words (the counts are all it shows, so no CSV is needed beside them).
        children.append(html.Div([
            dcc.Graph(figure=figures.class_answers_figure(question, counts), config=common.GRAPH_CONFIG,
                      className="lesson-class-figure"),
            html.P(figure_text.class_answers_text(question, counts), id=CLASS_FIGURE_TEXT, className="figure-text")],
            role="figure", **{"aria-label": _("The class's answers beside the model's"),
                              "aria-describedby": CLASS_FIGURE_TEXT}))
    return children


def locked_options(question: dict) -> list[dict]:
    """The choices, no longer changeable (after a reveal, or once a class answer is in)."""
    return [{"label": c, "value": i, "disabled": True} for i, c in enumerate(question["choices"])]


def step_address(trigger, search, ready):
    """Buttons move to a step by writing its query; a bare `?lesson=N` link (no state of its own) gets the
    step's state once the model is loaded (its block count is needed)."""
    if not ready or not state.model.ready or state.model.error:
        raise PreventUpdate
    n_layer = state.model.get().config.n_layer
    index = lesson_index(search)
    if trigger == CLOSE:
        return with_param(search, "lesson", None)
    if trigger in (OPEN, BACK, NEXT):
        if index is None:
            index = 0
        elif trigger != OPEN:
            index = min(len(steps.STEPS) - 1, max(0, index + (1 if trigger == NEXT else -1)))
        return steps.query(index, n_layer)
    if index is not None and "view=" not in search:
        return steps.query(index, n_layer)
    raise PreventUpdate


def register(app) -> None:
    @app.callback(Output(ids.URL, "search", allow_duplicate=True), Output(ids.URL, "href", allow_duplicate=True),
                  Input(OPEN, "n_clicks"), Input(BACK, "n_clicks"), Input(NEXT, "n_clicks"),
                  Input(CLOSE, "n_clicks"), Input(ids.URL, "search"), Input(layout.MODEL_READY, "data"),
                  State(ids.URL, "pathname"), prevent_initial_call="initial_duplicate")
    def navigate(_unused, __, ___, ____, search, ready, pathname):
        return address(step_address(callback_context.triggered_id, search, ready), pathname, search)

    @app.callback(Output(PANEL, "hidden"), Output(PROGRESS, "children"), Output(BODY, "children"),
                  Output(QUESTION_BOX, "hidden"), Output(QUESTION, "children"), Output(CHOICE, "options"),
                  Output(CHOICE, "value"), Output(ANSWER, "children"), Output(BACK, "disabled"),
                  Output(NEXT, "disabled"), Output(SHOWN, "data"),
                  Input(ids.URL, "search"), Input(layout.MODEL_READY, "data"), State(SHOWN, "data"))
    def show_step(search, ready, shown):
        """The step in the address bar; a change within the step (a slider, a class following its teacher)
        keeps the learner's choice and the revealed answer."""
        index = lesson_index(search)
        if index is None:
            return True, "", [], True, "", [], None, [], True, True, None
        if not ready or not state.model.ready or state.model.error or index == shown:
            raise PreventUpdate
        runtime = state.model.get()
        progress = [_("Step {index} of {value}").format(index=index + 1, value=len(steps.STEPS)),
                    html.Progress(value=index + 1, max=len(steps.STEPS), className="lesson-bar-progress")]
        question = asked(index)
        options, text = [], ""
        if question is not None:
            options = [{"label": c, "value": i} for i, c in enumerate(question["choices"])]
            untrained = [_(" (The model is untrained: its answer is computed all the same.)")]
            text = [_("Predict:") + " ", question["text"]] + (untrained if not runtime.pretrained else [])
        return (False, progress, step_body(index, runtime.pretrained), question is None, text, options, None, [],
                index == 0, index == len(steps.STEPS) - 1, index)

    @app.callback(Output(TASK, "children"), Output(TASK, "className"),
                  Input(ids.URL, "search"), Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"),
                  Input(ids.BLOCK, "value"), Input(ids.HEAD, "value"), Input(ids.TEMPERATURE, "value"),
                  Input(ids.TOP_K, "value"), Input(ids.TOP_P, "value"), Input(ids.TOP_N, "value"),
                  Input(generation.STOP_RUN, "disabled"), State(ids.GENERATION, "data"))
    def task_status(search, sequence, view, block, head, temperature, top_k, top_p, top_n, _unused, record):
        """The step's task, ticked once the page's state satisfies it (the stop button's switch marks the end
        of a generation, so a run's record is read once, not at every poll)."""
        index = lesson_index(search)
        if index is None or not state.model.ready or state.model.error:
            raise PreventUpdate
        runtime = state.model.get()
        step = steps.STEPS[index]
        context = tasks.Context(steps.settings(step, runtime.config.n_layer), runtime.config.n_layer,
                                state.trace_for, runtime.tokenizer.tokens)
        page = page_state(sequence, view, block, head, temperature, top_k, top_p, top_n, record)
        done = bool(step.task.check(page, context))
        return [html.Span("✓ " if done else _("Your turn: ")), _(step.task.text)], \
            "lesson-task lesson-task-done" if done else "lesson-task"

    # Reveal needs a choice first (a teacher may reveal without one); students wait for their teacher.
    app.clientside_callback(
        """function(choice, membership) {
            const role = membership && membership.role;
            return role === "student" || (role !== "teacher" && (choice === null || choice === undefined));
        }""",
        Output(REVEAL, "disabled"), Input(CHOICE, "value"), Input(CLASS, "data"))

    highlights = json.dumps([step.highlight for step in steps.STEPS])
    app.clientside_callback(
        """function(search, previous) {
            const targets = %s;
            const match = /[?&]lesson=(\\d+)/.exec(search || "");
            const step = match ? parseInt(match[1], 10) : null;
            const id = step ? targets[step - 1] : null;
            document.querySelectorAll(".lesson-highlight").forEach(e => e.classList.remove("lesson-highlight"));
            if (!id) { return null; }
            let tries = 0;
            const mark = function () {   // the step's tab may still be rendering
                const element = document.getElementById(id);
                if (element) {
                    element.classList.add("lesson-highlight");
                    // Scroll only when the step changes, not when a slider moves within it.
                    // (at once for readers who asked for less motion).
                    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
                    if (step !== previous) {
                        element.scrollIntoView({block: "start", behavior: still ? "auto" : "smooth"});
                    }
                } else if (tries++ < 40) { setTimeout(mark, 150); }
            };
            setTimeout(mark, 100);
            return step;
        }""" % highlights,
        Output(HIGHLIGHTED, "data"), Input(ids.URL, "search"), State(HIGHLIGHTED, "data"))
