"""The "Generation" view: the autoregressive loop with a KV cache, replayed token by token.

The server runs the whole generation in one bounded request (at most 100 tokens and 30 seconds) and stores a
compact record in `ids.GENERATION`; the browser then reveals the tokens one at a time with a clientside
player (play / pause / step / speed), with no round trips. Clicking generated token n writes `ids.SEQUENCE`
= prompt + generated[:n] with the label "step n" (the moment token n was chosen), so every other view shows
that state and the Next-token view highlights the token the generation drew there.
"""
from __future__ import annotations

import json
import uuid

import numpy as np
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from plotly.subplots import make_subplots

from model_runtime.generate import STOP_REASONS

from . import common, ids, state
from .output import checked_int, checked_params, checked_sequence

TAB = "generation"
MAX_NEW_TOKENS = 100
MAX_SECONDS = 30.0    # a generation never holds a worker longer than this
HISTORY = 6           # runs kept for the timing comparison (cache on / off)

N_TOKENS = "gen-n"
RUN = "gen-run"
STOP_RUN = "gen-stop-run"     # stops the generation in progress
SESSION = "gen-session"       # dcc.Store: a random id per page load; with RUN's click count it names one run
CACHE = "gen-cache"
MESSAGE = "gen-message"
STOP = "gen-stop"
TEXT = "gen-text"
PROMPT_TEXT = "gen-prompt"
TOKENS = "gen-tokens"
PLAY, PAUSE, STEP, SHOW_ALL = "gen-play", "gen-pause", "gen-step", "gen-all"
SPEED = "gen-speed"
PLAYER = "gen-player"          # dcc.Store {"shown", "playing", "total"}
INTERVAL = "gen-interval"
PROGRESS = "gen-progress"
BACK, WHOLE = "gen-back", "gen-whole"
TIMINGS = "gen-timings"
STEPS_FIGURE = "gen-steps"
CHIP = "gen-chip"              # pattern-matching type of the generated-token chips

PREFILL_COLOR = "#f4a259"
STEP_COLOR = "#8aa9d6"
CACHE_COLOR = "#1b2a49"

# Inline styles (no stylesheet needed): generated tokens stand out from the prompt, the step on screen more.
CHIP_STYLE = {"display": "inline", "whiteSpace": "pre-wrap", "font": "inherit", "border": "none",
              "borderRadius": "3px", "padding": "1px 0", "margin": "0", "background": "#ffe3b3",
              "cursor": "pointer", "color": "inherit", "boxShadow": "inset 0 -2px 0 #f4a259"}
CURRENT_STYLE = {**CHIP_STYLE, "background": "#e4572e", "color": "white", "boxShadow": "none"}
HIDDEN_STYLE = {**CHIP_STYLE, "display": "none"}

EXPLANATION = """
**Generation is a loop.** GPT-2 reads the text so far, turns the last position into a next-token distribution
(with the temperature, top-k and top-p above, as in the Next-token view), draws one token, appends it, and goes
again: each new token is chosen knowing only the tokens before it.

**The KV cache.** At every step, attention needs the keys and values of all earlier tokens. They never change,
so the model keeps them: per block, heads × tokens × 64 numbers for the keys and as many for the values. The
first step (the *prefill*) reads the whole prompt; every later step then feeds only the one new token. Turn
the cache off to recompute everything at each step, and compare the timings.

Click a generated token to see every view at the moment it was chosen (the text before it); hover over a token
to see the step's top candidates.
"""
EQUATION = (r"x_{t+1} \sim p(\,\cdot \mid x_1, \dots, x_t), \qquad "
            r"K_{1..t+1} = [\,K_{1..t};\ k_{t+1}\,],\quad V_{1..t+1} = [\,V_{1..t};\ v_{t+1}\,]")


# ----------------------------------------------------------------------------------------------------------
# Running a generation: a compact record for the store.

def readable(token) -> str:
    """A token as it reads in a sentence: real spaces, newlines kept (shown as ↵), stray bytes as <0xNN>."""
    try:
        text = token.bytes.decode("utf-8")
    except UnicodeDecodeError:
        return token.text
    if text == "<|endoftext|>" or not text:
        return token.text
    out = []
    for char in text:
        if char == "\n":
            out.append("↵\n")
        elif char in "\t":
            out.append(char)
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def checked_use_cache(value) -> bool:
    """The "use KV cache" checklist ([] or ["on"]), or a plain boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "on" in value
    raise ValueError("the KV-cache switch must be on or off")


def run_id(session, n_clicks) -> str | None:
    """The name of one generation run (page load + Generate click), shared by Generate and Stop."""
    if isinstance(session, str) and session.isalnum() and len(session) <= 64 and isinstance(n_clicks, int):
        return f"stop:{session}:{n_clicks}"
    return None


def stop_requested(name: str | None) -> bool:
    # The shared cache, not a dict in memory: under gunicorn the Stop click may reach another worker.
    return bool(name) and bool(state.views_cache.get(name))


def run_generation(runtime, prompt_ids: list[int], n_tokens: int, params, use_cache: bool,
                   max_seconds: float = MAX_SECONDS, stop_name: str | None = None) -> dict:
    """Generate and keep what the page shows: each step's token, top-5 candidates, timing and cache size.
    Between steps, a Stop click for `stop_name` ends the run (stop reason "cancelled")."""
    tokenizer = runtime.tokenizer
    gen = runtime.generate(prompt_ids, max_new_tokens=n_tokens, temperature=params.temperature,
                           top_k=params.top_k, top_p=params.top_p, seed=params.seed, use_cache=use_cache,
                           max_seconds=max_seconds)
    steps = []
    for step in gen:
        if stop_requested(stop_name):
            gen.cancel()
        record = step.sampling
        steps.append({
            "id": step.token_id, "text": step.token.text, "chip": readable(step.token),
            "prob": round(float(record.probs[step.token_id]), 6),
            "prob_before": round(float(record.probs_before[step.token_id]), 6), "rank": record.rank,
            "top": [[tokenizer.token(r["id"]).text, round(r["prob_before"], 6)] for r in record.top(5)],
            "ms": round(step.seconds * 1000, 3), "cache_len": step.cache_len, "cache_bytes": step.cache_bytes,
        })
    cfg = runtime.config
    return {
        "prompt_ids": list(gen.prompt_ids), "new_ids": list(gen.new_ids),
        "prompt_text": tokenizer.decode(gen.prompt_ids), "steps": steps,
        "timings": gen.timings, "stop_reason": gen.stop_reason,
        "stop_message": STOP_REASONS.get(gen.stop_reason, gen.stop_reason),
        "use_cache": use_cache, "max_new_tokens": n_tokens,
        "params": {"temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
                   "seed": params.seed},
        "model": {"name": cfg.name, "n_layer": cfg.n_layer, "n_head": cfg.n_head, "d_head": cfg.d_head},
    }


def headline(record: dict) -> dict:
    t = record["timings"]
    return {"use_cache": record["use_cache"], "new_tokens": t["new_tokens"], "prompt_tokens": len(record["prompt_ids"]),
            "ttft_ms": None if t["ttft_s"] is None else t["ttft_s"] * 1000,
            "per_token_ms": None if t["per_token_s"] is None else t["per_token_s"] * 1000,
            "tokens_per_s": t["tokens_per_s"], "kv_cache_bytes": t["kv_cache_bytes"], "model": record["model"]["name"]}


def prompt_of(sequence) -> list[int]:
    """The prompt part of a sequence store (generation always continues the prompt, not a step on screen)."""
    token_ids = checked_sequence(sequence, "Run a prompt first, then generate.")
    n_prompt = sequence.get("n_prompt")
    if isinstance(n_prompt, int) and not isinstance(n_prompt, bool) and 1 <= n_prompt <= len(token_ids):
        return token_ids[:n_prompt]
    return token_ids


def generate(n_clicks, sequence, prompt, n_tokens, use_cache, temperature, top_k, top_p, seed, previous=None,
             session=None):
    """Generate button -> (generation record, message, sequence). The sequence goes back to the prompt (the
    chips then choose a step); with no sequence yet, the prompt box's text is used."""
    if not n_clicks:
        raise PreventUpdate
    try:
        n = checked_int(n_tokens, "The number of tokens to generate", 1, MAX_NEW_TOKENS)
        params = checked_params(temperature, top_k, top_p, seed)
        cache = checked_use_cache(use_cache)
    except ValueError as why:
        return no_update, f"Cannot generate: {why}.", no_update
    new_sequence = no_update
    try:
        if isinstance(sequence, dict) and sequence.get("ids"):
            prompt_ids = prompt_of(sequence)
            if sequence.get("ids") != prompt_ids or sequence.get("label") != "prompt":
                new_sequence = {**sequence, "ids": prompt_ids, "n_prompt": len(prompt_ids), "label": "prompt"}
        else:
            new_sequence, why = state.prompt_to_sequence(prompt)
            if new_sequence is None:
                return no_update, f"Cannot generate: {why}", no_update
            new_sequence["prompt"] = prompt
            prompt_ids = new_sequence["ids"]
        record = run_generation(state.model.get(), prompt_ids, n, params, cache, stop_name=run_id(session, n_clicks))
    except (ValueError, RuntimeError) as why:
        return no_update, f"Cannot generate: {why}", no_update
    history = previous.get("history") if isinstance(previous, dict) else None
    history = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
    record["history"] = (history + [headline(record)])[-HISTORY:] if record["steps"] else history[-HISTORY:]
    message = "" if record["steps"] else f"No token was generated: {record['stop_message']}."
    return record, message, new_sequence


# ----------------------------------------------------------------------------------------------------------
# Pure builders for the page.

def checked_record(generation) -> dict:
    """A generation record from the store, checked enough to draw (it may have been edited by hand)."""
    if not isinstance(generation, dict):
        raise ValueError("Press Generate to write with the model.")
    prompt, new, steps = generation.get("prompt_ids"), generation.get("new_ids"), generation.get("steps")
    if not (isinstance(prompt, list) and isinstance(new, list) and isinstance(steps, list)
            and len(steps) == len(new) and all(isinstance(i, int) for i in prompt + new)
            and all(isinstance(s, dict) for s in steps)):
        raise ValueError("The stored generation is not readable; press Generate again.")
    return generation


def chip_title(n: int, step: dict) -> str:
    top = ", ".join(f"{text} {100 * p:.1f}%" for text, p in step.get("top", []))
    return (f"Step {n}: drew {step.get('text')} (id {step.get('id')}) with probability {step.get('prob', 0):.3f}, "
            f"rank {step.get('rank', 0) + 1} by logit.\nTop candidates: {top}\nClick to see every view at this step.")


def token_chips(record: dict) -> list[html.Button]:
    """One clickable chip per generated token (hidden until the player reveals it), the step's top five
    candidates in its title (shown on hover). Text only, never HTML."""
    return [html.Button(step.get("chip") or step.get("text", ""), id={"type": CHIP, "index": n}, n_clicks=0,
                        title=chip_title(n, step), className="gen-token", style=HIDDEN_STYLE)
            for n, step in enumerate(record["steps"])]


def steps_figure(steps: list[dict]) -> go.Figure:
    """Per step: time (bars; step 0 is the prefill over the whole prompt), and the KV cache's length and size."""
    if not steps:
        return common.message_figure("No steps to show.")
    x = np.arange(len(steps), dtype=np.int32)
    texts = [s.get("text", "") for s in steps]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.14,
                        specs=[[{}], [{"secondary_y": True}]],
                        subplot_titles=("Time per step (ms)", "KV cache after each step"))
    fig.add_trace(go.Bar(x=x, y=np.asarray([s["ms"] for s in steps], dtype=np.float32), name="time per step",
                         marker_color=[PREFILL_COLOR] + [STEP_COLOR] * (len(steps) - 1), hovertext=texts,
                         hovertemplate="step %{x}: %{hovertext}<br>%{y:.1f} ms<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=np.asarray([s["cache_len"] for s in steps], dtype=np.float32),
                             name="cached positions", mode="lines+markers", line=dict(color=CACHE_COLOR),
                             hovertext=texts, hovertemplate="step %{x}: %{y:.0f} positions<extra></extra>"),
                  row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=np.asarray([s["cache_bytes"] / 1e6 for s in steps], dtype=np.float32),
                             name="cache size (MB)", mode="lines", line=dict(color=PREFILL_COLOR, dash="dot"),
                             hovertemplate="step %{x}: %{y:.2f} MB<extra></extra>"),
                  row=2, col=1, secondary_y=True)
    fig.update_xaxes(title_text="step (0 = prefill: reads the whole prompt)", row=2, col=1)
    fig.update_yaxes(title_text="ms", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="positions", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="MB", rangemode="tozero", showgrid=False, row=2, col=1, secondary_y=True)
    fig.update_layout(legend=dict(orientation="h", y=-0.25), bargap=0.2)
    return common.style(fig, height=420)


def _ms(value) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


def timings_block(record: dict) -> html.Div:
    """Headline timings, the KV-cache size worked out, and the last runs side by side."""
    h = headline(record)
    tps = h["tokens_per_s"]
    cards = [("time to first token", _ms(h["ttft_ms"])), ("then per token", _ms(h["per_token_ms"])),
             ("tokens per second", "—" if tps is None else f"{tps:,.1f}"),
             ("KV cache", f"{h['kv_cache_bytes'] / 1e6:,.2f} MB" if record.get("use_cache") else "off")]
    children = [html.Div([html.Div([html.Div(value, className="stat-value"), html.Div(label, className="stat-label")],
                                   className="stat", style={"display": "inline-block", "marginRight": "2em"})
                          for label, value in cards], className="stats")]
    steps, model = record["steps"], record.get("model", {})
    if record.get("use_cache") and steps and {"n_layer", "n_head", "d_head"} <= set(model):
        T = steps[-1]["cache_len"]
        size = 2 * model["n_layer"] * model["n_head"] * T * model["d_head"] * 4
        children.append(html.P(
            f"KV cache = 2 (keys and values) × {model['n_layer']} blocks × {model['n_head']} heads × {T} tokens × "
            f"{model['d_head']} numbers × 4 bytes = {size / 1e6:,.2f} MB.", className="gen-cache-formula"))
    history = record.get("history") or []
    if len(history) > 1:
        head = html.Tr([html.Th(h) for h in ("run", "KV cache", "prompt + new tokens", "first token",
                                             "per token", "tokens/s")])
        rows = [html.Tr([html.Td(i + 1), html.Td("on" if r.get("use_cache") else "off"),
                         html.Td(f"{r.get('prompt_tokens')} + {r.get('new_tokens')}"), html.Td(_ms(r.get("ttft_ms"))),
                         html.Td(_ms(r.get("per_token_ms"))),
                         html.Td("—" if r.get("tokens_per_s") is None else f"{r['tokens_per_s']:,.1f}")])
                for i, r in enumerate(history)]
        children.append(html.Details([html.Summary("Compare the last runs"),
                                      html.Table([html.Thead(head), html.Tbody(rows)], className="numbers-table")],
                                     open=True))
    return html.Div(children)


def render(generation, view):
    """(prompt text, chips, stop reason, timings, figure) for the stored generation."""
    if view != TAB:
        raise PreventUpdate
    if generation is None:
        return "", [], "", [], common.message_figure("Press Generate to see each step's time and KV cache.")
    try:
        record = checked_record(generation)
    except ValueError as why:
        return "", [], str(why), [], common.message_figure(str(why))
    stop = f"Stopped after {len(record['steps'])} token{'s' if len(record['steps']) != 1 else ''}: " \
           f"{record.get('stop_message') or record.get('stop_reason')}."
    prompt = record.get("prompt_text") if isinstance(record.get("prompt_text"), str) else ""
    return prompt, token_chips(record), stop, timings_block(record) if record["steps"] else [], \
        steps_figure(record["steps"])


def step_sequence(generation, n: int, sequence=None) -> dict:
    """The sequence store for step n of a generation: prompt + generated[:n], label "step n" (n = 0..N; n = N is
    the whole text). Keeps the shell's extra keys (the prompt text for the shareable link)."""
    record = checked_record(generation)
    prompt, new = record["prompt_ids"], record["new_ids"]
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(new):
        raise ValueError(f"no step {n!r} in this generation")
    extra = {k: v for k, v in sequence.items() if k == "prompt"} if isinstance(sequence, dict) else {}
    out = {**extra, "ids": prompt + new[:n], "n_prompt": len(prompt), "label": f"step {n}"}
    if n < len(new):  # what the generation drew here, for the Next-token view (a fresh draw may differ)
        params = record.get("params") if isinstance(record.get("params"), dict) else {}
        names = {"temperature": "temperature", "top_k": "top-k", "top_p": "top-p", "seed": "seed"}
        settings = ", ".join(f"{name} {params[key]}" for key, name in names.items() if key in params)
        text = record["steps"][n].get("text")
        out["drawn"] = {"step": n, "id": new[n], "text": text if isinstance(text, str) else str(new[n]),
                        "settings": f"its settings ({settings})" if settings else "its settings",
                        "length": len(out["ids"]), "last": out["ids"][-1]}
    return out


def select_step(chip_clicks, back_clicks, whole_clicks, generation, sequence):
    """A chip (step n), "Back to the prompt" or "Whole text" -> the sequence every view shows."""
    trigger = callback_context.triggered_id
    triggered = callback_context.triggered
    if trigger is None or not triggered or not triggered[0].get("value"):
        raise PreventUpdate  # chips (re)rendered with no click
    try:
        record = checked_record(generation)
        if trigger == BACK:
            extra = {k: v for k, v in (sequence or {}).items() if k == "prompt"} if isinstance(sequence, dict) else {}
            return {**extra, "ids": record["prompt_ids"], "n_prompt": len(record["prompt_ids"]), "label": "prompt"}
        if trigger == WHOLE:
            return step_sequence(record, len(record["new_ids"]), sequence)
        if isinstance(trigger, dict) and trigger.get("type") == CHIP:
            return step_sequence(record, trigger.get("index"), sequence)
    except ValueError:
        raise PreventUpdate from None
    raise PreventUpdate


# ----------------------------------------------------------------------------------------------------------
# Layout and callbacks.

def _button(label, id_, title):
    return html.Button(label, id=id_, n_clicks=0, title=title, className="player-button")


def section():
    return html.Div([
        common.explanation(EXPLANATION, EQUATION),
        html.Div([
            html.Label(["Tokens to generate ",
                        dcc.Input(id=N_TOKENS, type="number", min=1, max=MAX_NEW_TOKENS, step=1, value=20,
                                  debounce=True, style={"width": "5em"})]),
            dcc.Checklist(id=CACHE, options=[{"label": " use KV cache", "value": "on"}], value=["on"], inline=True,
                          style={"display": "inline-block", "margin": "0 1em"}),
            html.Button("Generate", id=RUN, n_clicks=0, className="run-button"),
            html.Button("■ Stop", id=STOP_RUN, n_clicks=0, disabled=True, className="player-button",
                        title="Stop the generation in progress"),
            html.Span(" Uses the temperature, top-k, top-p and seed above.", className="hint"),
        ], className="gen-controls"),
        dcc.Loading(html.Div(id=MESSAGE, className="view-message", role="alert"), type="dot"),
        html.Div([
            _button("▶ Play", PLAY, "Reveal the tokens one by one"), _button("❚❚ Pause", PAUSE, "Pause"),
            _button("+1 Step", STEP, "Reveal one more token"), _button("Show all", SHOW_ALL, "Reveal every token"),
            html.Span("Speed (tokens per second)", style={"margin": "0 0.5em 0 1em"}),
            html.Div(dcc.Slider(id=SPEED, min=1, max=20, step=1, value=4, marks={1: "1", 5: "5", 10: "10", 20: "20"},
                                allow_direct_input=False), style={"display": "inline-block", "width": "220px",
                                                                  "verticalAlign": "middle"}),
            html.Span(id=PROGRESS, className="gen-progress", style={"marginLeft": "1em"}),
        ], className="gen-player"),
        html.Div([html.Span(id=PROMPT_TEXT, className="gen-prompt-text"), html.Span(id=TOKENS)], id=TEXT,
                 className="gen-text",
                 style={"whiteSpace": "pre-wrap", "fontSize": "1.3em", "lineHeight": "1.7", "padding": "0.6em",
                        "border": "1px solid #ddd", "borderRadius": "6px", "maxHeight": "22em", "overflowY": "auto",
                        "margin": "0.5em 0"}),
        html.Div([_button("Back to the prompt", BACK, "Every view shows the prompt again"),
                  _button("Whole text", WHOLE, "Every view shows the prompt and all generated tokens")],
                 className="gen-navigation"),
        html.Div(id=STOP, className="gen-stop", role="status"),
        html.Div(id=TIMINGS, className="gen-timings"),
        common.graph(STEPS_FIGURE),
        dcc.Store(id=PLAYER, data={"shown": 0, "playing": False, "total": 0}),
        dcc.Store(id=SESSION, data=uuid.uuid4().hex),
        dcc.Interval(id=INTERVAL, interval=250, disabled=True),
    ], className="view view-generation")


PLAYER_JS = """
function(play, pause, step, all, ticks, generation, speed, player) {
    const ctx = window.dash_clientside.callback_context;
    const fired = (ctx.triggered || []).map(t => t.prop_id.split(".")[0]);
    const total = generation && Array.isArray(generation.steps) ? generation.steps.length : 0;
    let shown = player && Number.isInteger(player.shown) ? Math.min(player.shown, total) : 0;
    let playing = !!(player && player.playing);
    const rate = Math.min(20, Math.max(1, Number(speed) || 4));
    if (fired.includes("%(GENERATION)s")) { shown = 0; playing = total > 0; }
    else if (fired.includes("%(PLAY)s")) { if (shown >= total) { shown = 0; } playing = total > 0; }
    else if (fired.includes("%(PAUSE)s")) { playing = false; }
    else if (fired.includes("%(STEP)s")) { playing = false; shown = Math.min(total, shown + 1); }
    else if (fired.includes("%(ALL)s")) { playing = false; shown = total; }
    else if (fired.includes("%(INTERVAL)s") && playing) { shown = Math.min(total, shown + 1); }
    if (shown >= total) { playing = false; }
    return [{shown: shown, playing: playing, total: total}, !playing, Math.round(1000 / rate)];
}
""" % {"GENERATION": ids.GENERATION, "PLAY": PLAY, "PAUSE": PAUSE, "STEP": STEP, "ALL": SHOW_ALL,
       "INTERVAL": INTERVAL}

REVEAL_JS = """
function(player, chips, sequence, generation) {
    const ctx = window.dash_clientside.callback_context;
    const n = ctx.outputs_list[0].length;
    const shown = player && Number.isInteger(player.shown) ? player.shown : 0;
    let current = -1;
    if (sequence && generation && Array.isArray(sequence.ids) && Array.isArray(generation.prompt_ids)
            && Array.isArray(generation.new_ids) && typeof sequence.label === "string"
            && sequence.label.startsWith("step")) {
        const k = sequence.ids.length - generation.prompt_ids.length;
        const expected = generation.prompt_ids.concat(generation.new_ids.slice(0, k));
        if (k >= 0 && k < generation.new_ids.length && expected.length === sequence.ids.length
                && expected.every((v, i) => v === sequence.ids[i])) { current = k; }
    }
    const styles = [];
    for (let i = 0; i < n; i++) {
        styles.push(i >= shown ? %(HIDDEN)s : (i === current ? %(CURRENT)s : %(CHIP)s));
    }
    const total = generation && Array.isArray(generation.steps) ? generation.steps.length : 0;
    const where = current >= 0 ? " · every view shows step " + current : "";
    return [styles, total ? shown + " / " + total + " tokens" + where : ""];
}
""" % {"HIDDEN": json.dumps(HIDDEN_STYLE), "CURRENT": json.dumps(CURRENT_STYLE), "CHIP": json.dumps(CHIP_STYLE)}


def stop(n_clicks, session, run_clicks):
    """Stop button -> ask the run in progress to end after its current step."""
    name = run_id(session, run_clicks)
    if not n_clicks or name is None:
        raise PreventUpdate
    state.views_cache.set(name, True, timeout=300)
    return "Stopping…"


def register(app) -> None:
    app.callback(Output(STOP, "children", allow_duplicate=True), Input(STOP_RUN, "n_clicks"),
                 State(SESSION, "data"), State(RUN, "n_clicks"), prevent_initial_call=True)(stop)
    app.callback(
        Output(ids.GENERATION, "data"), Output(MESSAGE, "children"),
        Output(ids.SEQUENCE, "data", allow_duplicate=True),
        Input(RUN, "n_clicks"),
        State(ids.SEQUENCE, "data"), State(ids.PROMPT, "value"), State(N_TOKENS, "value"), State(CACHE, "value"),
        State(ids.TEMPERATURE, "value"), State(ids.TOP_K, "value"), State(ids.TOP_P, "value"),
        State(ids.SEED, "value"), State(ids.GENERATION, "data"), State(SESSION, "data"),
        running=[(Output(RUN, "disabled"), True, False), (Output(STOP_RUN, "disabled"), False, True)],
        prevent_initial_call=True,
    )(generate)
    app.callback(
        Output(PROMPT_TEXT, "children"), Output(TOKENS, "children"), Output(STOP, "children"),
        Output(TIMINGS, "children"), Output(STEPS_FIGURE, "figure"),
        Input(ids.GENERATION, "data"), Input(ids.VIEW, "value"),
    )(render)
    app.clientside_callback(
        PLAYER_JS,
        Output(PLAYER, "data"), Output(INTERVAL, "disabled"), Output(INTERVAL, "interval"),
        Input(PLAY, "n_clicks"), Input(PAUSE, "n_clicks"), Input(STEP, "n_clicks"), Input(SHOW_ALL, "n_clicks"),
        Input(INTERVAL, "n_intervals"), Input(ids.GENERATION, "data"), Input(SPEED, "value"),
        State(PLAYER, "data"),
    )
    app.clientside_callback(
        REVEAL_JS,
        Output({"type": CHIP, "index": ALL}, "style"), Output(PROGRESS, "children"),
        Input(PLAYER, "data"), Input(TOKENS, "children"), Input(ids.SEQUENCE, "data"), State(ids.GENERATION, "data"),
    )
    app.callback(
        Output(ids.SEQUENCE, "data", allow_duplicate=True),
        Input({"type": CHIP, "index": ALL}, "n_clicks"), Input(BACK, "n_clicks"), Input(WHOLE, "n_clicks"),
        State(ids.GENERATION, "data"), State(ids.SEQUENCE, "data"),
        prevent_initial_call=True,
    )(select_step)
