"""The "Generation" view: the autoregressive loop with a KV cache, live, on the machine's generation engine.

Generate submits a job to the engine (`state.engine`: in this process, the machine's engine process, or Ray
Serve) and returns at once; no web worker is held while the model writes. The page then polls the job
(`dcc.Interval`, every POLL_MS) and each answer appends the new steps to `ids.GENERATION` and their chips to
the text with `Patch` (only the new steps travel, never the whole record). Moving temperature / top-k / top-p
or a penalty during a run sends the new settings to the job: they apply from its next step, and the chip where
they changed carries a marker. Stop cancels the job within one step.

Why polling and not Dash's background callbacks: a background callback runs the whole generation inside a
worker-side job (Diskcache forks a process per job from a worker that already ran torch, which hangs; Celery
needs Redis and a worker pool holding its own model each) and its progress value is dropped once read; a job on
the shared engine, polled by id, works from any gunicorn worker, batches with everyone else's, and a poll is a
few milliseconds of server time.

A finished run is a plain record: the replay player (play / pause / step / speed) and "click a token to see
every view at that step" read it in the browser; it can be downloaded as JSON, opened again from the file, or
saved under a link (`?run=...`) that reopens it.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import time
import uuid
from urllib.parse import parse_qs

import numpy as np
import plotly.graph_objects as go
from dash import ALL, Input, Output, Patch, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate
from plotly.subplots import make_subplots

from model_runtime.generate import STOP_REASONS
from model_runtime.sampling import MAX_PENALTY, MAX_REPETITION_PENALTY, MIN_REPETITION_PENALTY

from . import common, i18n, ids, state
from . import figure_text as words
from .figure_access import accessible_graph
from .figure_access import register as register_figures
from .i18n import N_, _, ngettext, number, percent
from .output import checked_int, checked_params, checked_sequence

TAB = "generation"
MAX_NEW_TOKENS = state.EngineHolder.MAX_NEW_TOKENS
HISTORY = 6           # earlier runs kept for the timing comparison (cache on / off)
POLL_MS = 250         # how often a page asks its job for new steps while it runs
RUN_LINK_S = 7 * 24 * 3600   # how long a saved run's link works
MAX_UPLOAD_BYTES = 2_000_000

N_TOKENS = "gen-n"
RUN = "gen-run"
STOP_RUN = "gen-stop-run"     # stops the generation in progress
SESSION = "gen-session"       # dcc.Store: a random id per page load; the engine's jobs belong to it
JOB = "gen-job"               # dcc.Store {"job", "since", "params"} while a run is live, else None
POLL = "gen-poll"             # dcc.Interval: polls the live job
LIVE = "gen-live"             # one line: waiting / generating / step times and batch size
ANNOUNCE = "gen-announce"     # read out by screen readers: the new text, a sentence (or ~2 s) at a time
RENDERED = "gen-rendered"     # dcc.Store: changes when the whole record should be drawn again
CACHE = "gen-cache"
REPETITION, PRESENCE, FREQUENCY = "gen-repetition", "gen-presence", "gen-frequency"
STOP_AT = "gen-stop-at"       # stop sequences, one per line
LIVE_NOTE = "gen-live-note"   # what a mid-run settings change did
MESSAGE = "gen-message"
STOP = "gen-stop"
TEXT = "gen-text"
PROMPT_TEXT = "gen-prompt"
TOKENS = "gen-tokens"
CHANGES = "gen-changes"       # the list of mid-run settings changes
PLAY, PAUSE, STEP, SHOW_ALL = "gen-play", "gen-pause", "gen-step", "gen-all"
SPEED = "gen-speed"
PLAYER = "gen-player"          # dcc.Store {"shown", "playing", "total"}
INTERVAL = "gen-interval"
PROGRESS = "gen-progress"
PROGRESS_WORDS = "gen-progress-words"  # dcc.Store: the player's progress line in the page's language
BACK, WHOLE = "gen-back", "gen-whole"
DOWNLOAD_BUTTON, DOWNLOAD, UPLOAD, SHARE, SHARE_LINK = (
    "gen-download-button", "gen-download", "gen-upload", "gen-share", "gen-share-link")
TIMINGS = "gen-timings"
STEPS_FIGURE = "gen-steps"
CHIP = "gen-chip"              # pattern-matching type of the generated-token chips
MARK = "gen-mark"              # pattern-matching type of the "settings changed here" markers

PREFILL_COLOR = "#f4a259"
STEP_COLOR = "#8aa9d6"
CACHE_COLOR = "#1b2a49"
CHANGE_COLOR = "#7b2cbf"

# Inline styles (no stylesheet needed): generated tokens stand out from the prompt, the step on screen more.
CHIP_STYLE = {"display": "inline", "whiteSpace": "pre-wrap", "font": "inherit", "border": "none",
              "borderRadius": "3px", "padding": "1px 0", "margin": "0 1px 0 0", "background": "#ffe3b3",
              "cursor": "pointer", "color": "inherit", "boxShadow": "inset 0 -2px 0 #f4a259"}
CURRENT_STYLE = {**CHIP_STYLE, "background": "#b93e1a", "color": "white", "boxShadow": "none"}
HIDDEN_STYLE = {**CHIP_STYLE, "display": "none"}
MARK_STYLE = {"display": "inline-block", "fontSize": "0.7em", "fontFamily": "system-ui, sans-serif",
              "color": "white", "background": CHANGE_COLOR, "borderRadius": "3px", "padding": "0 3px",
              "margin": "0 2px", "verticalAlign": "middle", "lineHeight": "1.4"}
MARK_HIDDEN_STYLE = {**MARK_STYLE, "display": "none"}

SETTING_NAMES = {"temperature": N_("temperature"), "top_k": "top-k", "top_p": "top-p",
                 "repetition_penalty": N_("repetition penalty"), "presence_penalty": N_("presence penalty"),
                 "frequency_penalty": N_("frequency penalty")}
SHORT_NAMES = {"temperature": "T", "top_k": "k", "top_p": "p", "repetition_penalty": "rep",
               "presence_penalty": "pres", "frequency_penalty": "freq"}

EXPLANATION = N_("**Generation is a loop.** GPT-2 reads the text so far, turns the last position into a next-token "
                 "distribution (with the temperature, top-k and top-p above, as in the Next-token view), draws one "
                 "token, appends it, and goes again: each new token is chosen knowing only the tokens before it. "
                 "Tokens appear as they are decoded; move the sliders during a run and the rest of the run uses the "
                 "new settings (a purple marker shows where).\n\n**The KV cache.** At every step, attention needs "
                 "the keys and values of all earlier tokens. They never change, so the model keeps them: per block, "
                 "heads × tokens × 64 numbers for the keys and as many for the values. The first step (the "
                 "*prefill*) reads the whole prompt; every later step then feeds only the one new token. Turn the "
                 "cache off to recompute everything at each step, and compare the timings.\n\n**One engine for the "
                 "whole class.** Each step reads all 124M weights from memory, whoever asks. So the server decodes "
                 "everyone's next token in one forward pass: a step's time is shown with its *batch size*, the "
                 "number of runs that shared it.\n\nClick a generated token to see every view at the moment it was "
                 "chosen (the text before it); hover over a token to see the step's top candidates.")
EQUATION = (r"x_{t+1} \sim p(\,\cdot \mid x_1, \dots, x_t), \qquad "
            r"K_{1..t+1} = [\,K_{1..t};\ k_{t+1}\,],\quad V_{1..t+1} = [\,V_{1..t};\ v_{t+1}\,]")


# ----------------------------------------------------------------------------------------------------------
# Values from the page

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
    raise ValueError(_("the KV-cache switch must be on or off"))


def checked_number(value, name: str, default: float, low: float, high: float) -> float:
    """A penalty box: empty means its default (off)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(_("{name} must be a number from {low:g} to {high:g}, not {value!r}").format(
            name=name, low=low, high=high, value=str(value)[:40])) from None
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        raise ValueError(_("{name} must be a number from {low:g} to {high:g}; got {value}").format(
            name=name, low=low, high=high, value=str(value)[:40]))
    return number


def checked_penalties(repetition, presence, frequency) -> dict:
    return {"repetition_penalty": checked_number(repetition, _("The repetition penalty"), 1.0, MIN_REPETITION_PENALTY,
                                          MAX_REPETITION_PENALTY),
            "presence_penalty": checked_number(presence, _("The presence penalty"), 0.0, -MAX_PENALTY, MAX_PENALTY),
            "frequency_penalty": checked_number(frequency, _("The frequency penalty"), 0.0, -MAX_PENALTY, MAX_PENALTY)}


def checked_stop(text) -> list[str]:
    """Stop sequences, one per line of the box; `\\n` and `\\t` stand for a newline and a tab."""
    if text is None:
        return []
    if not isinstance(text, str) or len(text) > 400:
        raise ValueError(_("stop sequences must be text, one per line"))
    lines = [line.replace("\\n", "\n").replace("\\t", "\t") for line in text.splitlines()]
    return [line for line in lines if line]


def live_settings(temperature, top_k, top_p, repetition, presence, frequency) -> dict:
    """The settings a run may change while it runs, from the controls."""
    params = checked_params(temperature, top_k, top_p, None)
    return {"temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
            **checked_penalties(repetition, presence, frequency)}


def prompt_of(sequence) -> list[int]:
    """The prompt part of a sequence store (generation always continues the prompt, not a step on screen)."""
    token_ids = checked_sequence(sequence, _("Run a prompt first, then generate."))
    n_prompt = sequence.get("n_prompt")
    if isinstance(n_prompt, int) and not isinstance(n_prompt, bool) and 1 <= n_prompt <= len(token_ids):
        return token_ids[:n_prompt]
    return token_ids


def checked_room(runtime, prompt_ids: list[int]) -> None:
    """A run needs room in the context window for at least one new token."""
    if len(prompt_ids) >= runtime.config.n_ctx:
        raise ValueError(_("the context window is full: the prompt already has {n_prompt_ids} of {n_ctx} "
                           "tokens.").format(n_prompt_ids=number(len(prompt_ids)), n_ctx=number(runtime.config.n_ctx)))


def session_of(session) -> str:
    if isinstance(session, str) and session.isalnum() and len(session) <= 64:
        return session
    raise ValueError(_("this page has no valid session id; reload the page"))


# ----------------------------------------------------------------------------------------------------------
# Records

def new_record(runtime, prompt_ids: list[int], settings: dict, history: list) -> dict:
    """The record of a run that has just been submitted: no steps yet, `live` until the engine says it ended."""
    cfg = runtime.config
    return {
        "version": 1, "prompt_ids": list(prompt_ids), "new_ids": [], "steps": [],
        "prompt_text": runtime.tokenizer.decode(prompt_ids), "live": True,
        "stop_reason": None, "stop_message": None, "timings": None,
        "use_cache": settings["use_cache"], "max_new_tokens": settings["max_new_tokens"],
        "params": {k: settings[k] for k in ("temperature", "top_k", "top_p", "seed", "repetition_penalty",
                                            "presence_penalty", "frequency_penalty")},
        "stop": settings["stop"], "history": history[-HISTORY:],
        "model": {"name": cfg.name, "n_layer": cfg.n_layer, "n_head": cfg.n_head, "d_head": cfg.d_head,
                  "pretrained": runtime.pretrained},
    }


def headline(record: dict) -> dict:
    t = record.get("timings") or {}
    ms = (lambda s: None if s is None else s * 1000)
    return {"use_cache": record.get("use_cache"), "new_tokens": len(record.get("new_ids", [])),
            "prompt_tokens": len(record.get("prompt_ids", [])), "ttft_ms": ms(t.get("ttft_s")),
            "per_token_ms": ms(t.get("per_token_s")), "tokens_per_s": t.get("tokens_per_s"),
            "kv_cache_bytes": t.get("kv_cache_bytes", 0), "model": record.get("model", {}).get("name"),
            "mean_batch": mean_batch(record.get("steps", []))}


def mean_batch(steps: list[dict]) -> float | None:
    sizes = [s["batch_size"] for s in steps[1:] if isinstance(s.get("batch_size"), int)]  # step 0 is a prefill
    return sum(sizes) / len(sizes) if sizes else None


def with_chip(step: dict, tokenizer) -> dict:
    """A step record from the engine, with the chip text the page shows for it."""
    return {**step, "chip": readable(tokenizer.token(step["id"]))}


STEP_KEYS = {"id": int, "text": str, "chip": str, "prob": (int, float), "prob_before": (int, float), "rank": int,
             "top": list, "ms": (int, float), "cache_len": int, "cache_bytes": int}


def checked_record(generation) -> dict:
    """A generation record from the store or a file, checked enough to draw (it may have been edited by hand)."""
    if not isinstance(generation, dict):
        raise ValueError(_("Press Generate to write with the model."))
    prompt, new, steps = generation.get("prompt_ids"), generation.get("new_ids"), generation.get("steps")
    if not (isinstance(prompt, list) and isinstance(new, list) and isinstance(steps, list)
            and len(steps) == len(new) and len(prompt) + len(new) <= 4096
            and all(isinstance(i, int) and not isinstance(i, bool) for i in prompt + new)
            and all(isinstance(s, dict) for s in steps)):
        raise ValueError(_("The stored generation is not readable; press Generate again."))
    return generation


def checked_saved_run(data, vocab_size: int) -> dict:
    """A run from a downloaded file or a link, rebuilt from the fields the page reads, each checked: anything
    else in the file is dropped."""
    record = checked_record(data)
    if not all(0 <= i < vocab_size for i in record["prompt_ids"] + record["new_ids"]):
        raise ValueError(_("the file's token ids do not fit this model's vocabulary"))
    steps = []
    for n, (step, token) in enumerate(zip(record["steps"], record["new_ids"])):
        if not all(isinstance(step.get(k), t) and not isinstance(step.get(k), bool) for k, t in STEP_KEYS.items()):
            raise ValueError(_("step {n} of the file is incomplete").format(n=n))
        if step["id"] != token:
            raise ValueError(_("step {n} of the file does not match its token ids").format(n=n))
        clean = {k: step[k] for k in STEP_KEYS}
        clean["top"] = [[str(c[1])[:40], float(c[2])] if len(c) == 4 else [str(c[0])[:40], float(c[1])]
                        for c in step["top"][:10] if isinstance(c, list) and len(c) in (2, 4)]
        clean["batch_size"] = step["batch_size"] if isinstance(step.get("batch_size"), int) else 1
        params = step.get("params")
        if isinstance(params, dict):
            clean["params"] = {k: float(v) for k, v in params.items() if k in SETTING_NAMES
                               and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        steps.append(clean)
    text = data.get("prompt_text")
    keep = {"use_cache": bool, "max_new_tokens": int, "stop_reason": str, "stop_message": str}
    out = {k: data[k] for k, t in keep.items() if isinstance(data.get(k), t)}
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else {}
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    return {**out, "version": 1, "prompt_ids": record["prompt_ids"], "new_ids": record["new_ids"], "steps": steps,
            "prompt_text": text[:200_000] if isinstance(text, str) else "", "live": False,
            "timings": {k: v for k, v in timings.items() if isinstance(v, (int, float, bool)) or v is None},
            "model": {k: v for k, v in model.items() if isinstance(v, (str, int, bool))},
            "params": {k: v for k, v in (data.get("params") or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "history": []}


def settings_changes(steps: list[dict]) -> list[tuple[int, dict, dict]]:
    """(step, settings before, settings after) wherever a step was drawn with other settings than the one
    before it (a slider moved during the run)."""
    out = []
    for n in range(1, len(steps)):
        before, after = steps[n - 1].get("params"), steps[n].get("params")
        if isinstance(before, dict) and isinstance(after, dict) and before != after:
            out.append((n, before, after))
    return out


def _show(name: str, value) -> str:
    if name == "top_k":
        return _("off") if not value else str(int(value))
    if name == "temperature" and value == 0:
        return _("0 (greedy)")
    return f"{value:g}"


def change_text(before: dict, after: dict, short: bool = False) -> str:
    names = SHORT_NAMES if short else SETTING_NAMES
    parts = [(f"{names[k]} {_show(k, after[k])}" if short else
              f"{_(names[k])} {_show(k, before.get(k, after[k]))} → {_show(k, after[k])}")
             for k in SETTING_NAMES if k in after and before.get(k) != after[k]]
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------------------
# Pure builders for the page.

def chip_title(n: int, step: dict) -> str:
    top = ", ".join(f"{c[-3] if len(c) == 4 else c[0]} {percent(c[-2] if len(c) == 4 else c[1], 1)}"
                    for c in step.get("top", []))
    batch = step.get("batch_size")
    ms = number(step.get("ms", 0), 1)
    how = (_("{ms} ms in a batch of {batch}").format(ms=ms, batch=batch) if isinstance(batch, int) and n else
           _("{ms} ms (prefill)").format(ms=ms) if n == 0 else _("{ms} ms").format(ms=ms))
    return _("Step {n}: drew {token} (id {id}) with probability {prob}, rank {rank} by logit; {how}.\n"
             "Top candidates: {top}\nClick to see every view at this step.").format(
        n=n, token=step.get("text"), id=step.get("id"), prob=number(step.get("prob", 0), 3),
        rank=step.get("rank", 0) + 1, how=how, top=top)


def token_chips(steps: list[dict], first: int = 0, before: dict | None = None) -> list:
    """One clickable chip per generated token (hidden until the player reveals it; a live run shows them all),
    the step's top candidates in its title (shown on hover), and a marker before any step drawn with other
    settings than the step before it. Text only, never HTML. `first` is the index of steps[0] in the run and
    `before` the settings of the step before it."""
    out = []
    for n, step in enumerate(steps, start=first):
        params = step.get("params")
        if isinstance(before, dict) and isinstance(params, dict) and params != before:
            out.append(html.Span(change_text(before, params, short=True), id={"type": MARK, "index": n},
                                 className="gen-change-marker", style=MARK_STYLE,
                                 title=_("From step {n}: {value}").format(n=n, value=change_text(before, params))))
        before = params if isinstance(params, dict) else before
        out.append(html.Button(step.get("chip") or step.get("text", ""), id={"type": CHIP, "index": n}, n_clicks=0,
                               title=chip_title(n, step), className="gen-token", style=CHIP_STYLE))
    return out


def steps_figure(steps: list[dict]) -> go.Figure:
    """Per step: time (bars; step 0 is the prefill over the whole prompt) with the batch it was measured in, and
    the KV cache's length and size. Dotted lines where the settings changed during the run."""
    if not steps:
        return common.message_figure(_("No steps to show."))
    x = np.arange(len(steps), dtype=np.int32)
    texts = [s.get("text", "") for s in steps]
    batch = np.asarray([s.get("batch_size", 1) for s in steps], dtype=np.float32)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.16,
                        specs=[[{"secondary_y": True}], [{"secondary_y": True}]],
                        subplot_titles=(_("Time per step (ms), and the batch it was measured in"),
                                        _("KV cache after each step")))
    fig.add_trace(go.Bar(x=x, y=np.asarray([s["ms"] for s in steps], dtype=np.float32), name=_("time per step"),
                         marker=dict(color=[PREFILL_COLOR] + [STEP_COLOR] * (len(steps) - 1),
                                     pattern_shape=["/"] + [""] * (len(steps) - 1)),  # the prefill: hatched too
                         hovertext=texts,
                         customdata=batch,
                         hovertemplate=_("step %{x}: %{hovertext}<br>%{y:.1f} ms, batch of "
                                         "%{customdata:.0f}<extra></extra>")), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=batch, name=_("batch size"), mode="lines",
                             line=dict(color=CHANGE_COLOR, shape="hv"),
                             hovertemplate=_("step %{x}: %{y:.0f} runs in the step<extra></extra>")),
                  row=1, col=1, secondary_y=True)
    fig.add_trace(go.Scatter(x=x, y=np.asarray([s["cache_len"] for s in steps], dtype=np.float32),
                             name=_("cached positions"), mode="lines+markers", line=dict(color=CACHE_COLOR),
                             hovertext=texts, hovertemplate=_("step %{x}: %{y:.0f} positions<extra></extra>")),
                  row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=np.asarray([s["cache_bytes"] / 1e6 for s in steps], dtype=np.float32),
                             name=_("cache size (MB)"), mode="lines", line=dict(color=PREFILL_COLOR, dash="dot"),
                             hovertemplate=_("step %{x}: %{y:.2f} MB<extra></extra>")),
                  row=2, col=1, secondary_y=True)
    for n, before, after in settings_changes(steps):
        fig.add_vline(x=n - 0.5, line=dict(color=CHANGE_COLOR, dash="dot", width=1.5))
        fig.add_annotation(x=n - 0.5, y=1, yref="y domain", text=change_text(before, after, short=True),
                           showarrow=False, xanchor="left", yanchor="top", font=dict(color=CHANGE_COLOR, size=11))
    fig.update_xaxes(title_text=_("step (0 = prefill: reads the whole prompt)"), row=2, col=1)
    fig.update_yaxes(title_text="ms", rangemode="tozero", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="batch", rangemode="tozero", showgrid=False, row=1, col=1, secondary_y=True)
    fig.update_yaxes(title_text="positions", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="MB", rangemode="tozero", showgrid=False, row=2, col=1, secondary_y=True)
    fig.update_layout(legend=dict(orientation="h", y=-0.25), bargap=0.2)
    return words.attach(common.style(fig, height=440), words.steps_text(steps))


def _ms(value) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


def timings_block(record: dict) -> html.Div:
    """Headline timings, the KV-cache size worked out, and this run beside the earlier ones."""
    h = headline(record)
    tps, batch = h["tokens_per_s"], h["mean_batch"]
    cards = [(_("time to first token"), _ms(h["ttft_ms"])), (_("then per token"), _ms(h["per_token_ms"])),
             (_("tokens per second"), "—" if tps is None else f"{tps:,.1f}"),
             (_("mean batch size"), "—" if batch is None else f"{batch:,.1f}"),
             (_("KV cache"), f"{h['kv_cache_bytes'] / 1e6:,.2f} MB" if record.get("use_cache") else "off")]
    children = [common.stats(cards)]
    if not record.get("use_cache"):
        children.append(html.P(_("Without the cache this run was solo: it recomputed the whole text at every step "
                                 "and did not share its steps with other runs."), className="hint"))
    steps, model = record["steps"], record.get("model", {})
    if record.get("use_cache") and steps and {"n_layer", "n_head", "d_head"} <= set(model):
        T = steps[-1]["cache_len"]
        size = 2 * model["n_layer"] * model["n_head"] * T * model["d_head"] * 4
        children.append(html.P(
            _("KV cache = 2 (keys and values) × {model} blocks × {model2} heads × {t} tokens × {model3} numbers × 4 "
              "bytes = {size} MB.").format(model=model["n_layer"], model2=model["n_head"], t=T,
                                            model3=model["d_head"], size=number(size / 1e6, 2)),
            className="gen-cache-formula"))
    runs = [r for r in record.get("history") or [] if isinstance(r, dict)] + [h]
    if len(runs) > 1:
        head = html.Tr([html.Th(h) for h in ("run", _("KV cache"), _("prompt + new tokens"), _("first token"),
                                             _("per token"), "tokens/s", _("mean batch"))])
        rows = [html.Tr([html.Td(i + 1), html.Td(_("on") if r.get("use_cache") else _("off")),
                         html.Td(f"{r.get('prompt_tokens')} + {r.get('new_tokens')}"), html.Td(_ms(r.get("ttft_ms"))),
                         html.Td(_ms(r.get("per_token_ms"))),
                         html.Td("—" if r.get("tokens_per_s") is None else f"{r['tokens_per_s']:,.1f}"),
                         html.Td("—" if r.get("mean_batch") is None else f"{r['mean_batch']:,.1f}")])
                for i, r in enumerate(runs)]
        children.append(html.Details([html.Summary(_("Compare the last runs")),
                                      html.Table([html.Thead(head), html.Tbody(rows)], className="numbers-table")],
                                     open=True))
    return html.Div(children)


def changes_list(steps: list[dict]):
    changes = settings_changes(steps)
    if not changes:
        return []
    return html.Div([html.Span(_("Settings changed during the run: "), className="hint"),
                     html.Ul([html.Li(_("from step {n}: {value}").format(n=n, value=change_text(b, a)))
                              for n, b, a in changes])])


def stop_line(record: dict) -> str:
    if record.get("live"):
        return ""
    n = len(record["steps"])
    reason = record.get("stop_reason")
    why = record.get("stop_message") or reason   # the standard reasons in the reader's language
    return ngettext("Stopped after {n} token: {why}.", "Stopped after {n} tokens: {why}.", n).format(
        n=n, why=i18n.stop_reason(reason) if why == STOP_REASONS.get(reason) else why)


def render(_rendered, view, generation):
    """(prompt text, chips, stop reason, timings, figure, changes) for the stored generation."""
    if view != TAB:
        raise PreventUpdate
    if generation is None:
        return "", [], "", [], common.message_figure(_("Press Generate to see each step's time and KV cache.")), []
    try:
        record = checked_record(generation)
    except ValueError as why:
        return "", [], str(why), [], common.message_figure(str(why)), []
    steps = record["steps"]
    prompt = record.get("prompt_text") if isinstance(record.get("prompt_text"), str) else ""
    done = not record.get("live")
    return (prompt, token_chips(steps), stop_line(record), timings_block(record) if steps and done else [],
            steps_figure(steps) if done else common.message_figure(_("The figure is drawn when the run ends.")),
            changes_list(steps))


def step_sequence(generation, n: int, sequence=None) -> dict:
    """The sequence store for step n of a generation: prompt + generated[:n], label "step n" (n = 0..N; n = N is
    the whole text). Keeps the shell's extra keys (the prompt text for the shareable link)."""
    record = checked_record(generation)
    prompt, new = record["prompt_ids"], record["new_ids"]
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(new):
        raise ValueError(_("no step {n!r} in this generation").format(n=n))
    extra = {k: v for k, v in sequence.items() if k == "prompt"} if isinstance(sequence, dict) else {}
    out = {**extra, "ids": prompt + new[:n], "n_prompt": len(prompt), "label": f"step {n}"}
    if n < len(new):  # what the generation drew here, for the Next-token view (a fresh draw may differ)
        step = record["steps"][n]
        params = step.get("params") if isinstance(step.get("params"), dict) else record.get("params")
        params = {**(params if isinstance(params, dict) else {})}
        if isinstance(record.get("params"), dict) and "seed" in record["params"]:
            params["seed"] = record["params"]["seed"]
        names = {**SETTING_NAMES, "seed": N_("seed")}
        settings = ", ".join(f"{_(names[key])} {_show(key, params[key]) if key != 'seed' else params[key]}"
                             for key in names if key in params and params[key] is not None)
        text = step.get("text")
        out["drawn"] = {"step": n, "id": new[n], "text": text if isinstance(text, str) else str(new[n]),
                        "settings": (_("its settings ({settings})").format(settings=settings) if settings
                                     else _("its settings")),
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
# Callbacks: start, poll, steer, stop; save and open.

def waiting_line(position: int) -> str:
    return (_("Waiting for a free slot in the engine: number {n} in line.").format(n=position) if position > 0 else
            _("Reading the prompt (prefill)…"))


def generate(n_clicks, sequence, prompt, n_tokens, use_cache, temperature, top_k, top_p, seed, repetition=None,
             presence=None, frequency=None, stop_text=None, previous=None, session=None):
    """Generate -> the job is submitted to the engine; returns (record, message, sequence, job, poll disabled,
    live line, rendered). The sequence goes back to the prompt (the chips then choose a step); with no sequence
    yet, the prompt box's text is used."""
    if not n_clicks:
        raise PreventUpdate
    fail = (lambda why: (no_update, _("Cannot generate: {why}").format(why=i18n.message(why)), no_update, no_update, no_update,
                         no_update, no_update))
    try:
        owner = session_of(session)
        n = checked_int(n_tokens, _("The number of tokens to generate"), 1, MAX_NEW_TOKENS)
        params = checked_params(temperature, top_k, top_p, seed)
        settings = {"max_new_tokens": n, "use_cache": checked_use_cache(use_cache), "seed": params.seed,
                    "stop": checked_stop(stop_text),
                    **live_settings(temperature, top_k, top_p, repetition, presence, frequency)}
    except ValueError as why:
        return fail(i18n.message(why) + ".")
    new_sequence = no_update
    try:
        if isinstance(sequence, dict) and sequence.get("ids"):
            prompt_ids = prompt_of(sequence)
            if sequence.get("ids") != prompt_ids or sequence.get("label") != "prompt":
                new_sequence = {**sequence, "ids": prompt_ids, "n_prompt": len(prompt_ids), "label": "prompt"}
        else:
            new_sequence, why = state.prompt_to_sequence(prompt)
            if new_sequence is None:
                return fail(why)
            new_sequence["prompt"] = prompt
            prompt_ids = new_sequence["ids"]
        runtime = state.model.get()
        checked_room(runtime, prompt_ids)
        submitted = state.engine.get().submit(prompt_ids, settings, owner)
    except (ValueError, RuntimeError) as why:  # EngineError is a ValueError, EngineUnavailable a RuntimeError
        return fail(why)
    history = previous.get("history") if isinstance(previous, dict) else None
    history = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
    if isinstance(previous, dict) and previous.get("steps") and not previous.get("live"):
        history = history + [headline(previous)]  # the run before this one, for the comparison table
    record = new_record(runtime, prompt_ids, settings, history)
    job = {"job": submitted["job"], "since": 0, "params": None, "started": time.time()}
    solo = "" if settings["use_cache"] else _(" Without the KV cache this run is solo (not batched with others).")
    return (record, "", new_sequence, job, False, waiting_line(submitted.get("queue_position", 0)) + solo,
            uuid.uuid4().hex)


def live_line(answer: dict, steps: list[dict], total: int) -> str:
    if not steps:
        return waiting_line(answer.get("queue_position", 0))
    last = steps[-1]
    batch = last.get("batch_size", 1)
    where = _("the prefill") if last["index"] == 0 else \
        ngettext("a batch of {n} run", "a batch of {n} runs", batch).format(n=batch)
    return (_("Generating: {value} of {total} tokens · last step {last} ms in {where}").format(
        value=last['index'] + 1, total=total, last=number(last['ms'], 0), where=where)
            + ("" if answer.get("use_cache", True) else _(" · solo, without the KV cache")))


def poll(_n, job, session, n_tokens):
    """The poll timer -> the new steps appended to the record and the text; at the end, the stop reason and
    timings, and the timer stops. Outputs: record patch, chips patch, job, timer disabled, live line, message,
    rendered, note line (cleared at the end)."""
    if not isinstance(job, dict) or not isinstance(job.get("job"), str):
        raise PreventUpdate
    since = job.get("since") if isinstance(job.get("since"), int) else 0
    record, chips = Patch(), Patch()
    try:
        answer = state.engine.get().poll(job["job"], session_of(session), since)
        tokenizer = state.model.get().tokenizer
    except (ValueError, RuntimeError) as why:
        record["live"] = False
        record["stop_reason"], record["stop_message"] = "error", i18n.message(why)
        return record, no_update, None, True, "", _("The run ended: {why}").format(why=i18n.message(why)), \
            uuid.uuid4().hex, ""
    steps = [with_chip(s, tokenizer) for s in answer["steps"]]
    record["steps"].extend(steps)
    record["new_ids"].extend([s["id"] for s in steps])
    chips.extend(token_chips(steps, first=since, before=job.get("params")))
    total = n_tokens if isinstance(n_tokens, int) else MAX_NEW_TOKENS
    if not answer["done"]:
        new_job = {**job, "since": since + len(steps), "params": steps[-1]["params"] if steps else job.get("params")}
        line = live_line(answer, steps, total) if steps or not since else no_update  # no news: keep the last line
        return record, chips if steps else no_update, new_job, False, line, no_update, no_update, no_update
    record["live"] = False
    record["stop_reason"], record["stop_message"] = answer["stop_reason"], answer.get("stop_message")
    record["timings"] = answer.get("timings")
    message = _("The run ended with an error: {answer}").format(answer=answer['error']) if answer.get("error") else ""
    return record, chips if steps else no_update, None, True, "", message, uuid.uuid4().hex, ""


def steer(temperature, top_k, top_p, repetition, presence, frequency, job, session):
    """A sampling control moved while a run is live -> the run uses the new settings from its next step."""
    if not isinstance(job, dict) or not isinstance(job.get("job"), str):
        raise PreventUpdate
    try:
        settings = live_settings(temperature, top_k, top_p, repetition, presence, frequency)
        state.engine.get().update(job["job"], session_of(session), settings)
    except (ValueError, RuntimeError) as why:
        return _("Not applied: {why}").format(why=i18n.message(why))
    before = job.get("params")
    changed = change_text(before, settings) if isinstance(before, dict) else ""
    line = _("{changes} from the next step on (marked in the text).").format(changes=changed)
    return (line[0].upper() + line[1:] if changed else
            _("The run goes on with these settings."))


def stop(n_clicks, job, session):
    """Stop -> the run in progress ends after its current step."""
    if not n_clicks or not isinstance(job, dict) or not isinstance(job.get("job"), str):
        raise PreventUpdate
    try:
        state.engine.get().cancel(job["job"], session_of(session))
    except (ValueError, RuntimeError) as why:
        return _("Could not stop the run: {why}").format(why=i18n.message(why))
    return _("Stopping…")


def stop_disabled(job) -> bool:
    return not (isinstance(job, dict) and isinstance(job.get("job"), str))


def download(n_clicks, generation):
    if not n_clicks:
        raise PreventUpdate
    try:
        record = checked_record(generation)
    except ValueError as why:
        return no_update, str(why)
    if record.get("live") or not record["steps"]:
        return no_update, _("Download a run once it has ended.")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    content = json.dumps({k: v for k, v in record.items() if k != "history"}, ensure_ascii=False)
    return dict(content=content, filename=f"gpt2-run-{stamp}.json", type="application/json"), ""


def open_file(contents, filename):
    """A run downloaded earlier -> the record (checked field by field)."""
    if not contents:
        raise PreventUpdate
    try:
        if not isinstance(contents, str) or "," not in contents or len(contents) > MAX_UPLOAD_BYTES * 4 // 3 + 100:
            raise ValueError(_("choose a run file saved by this page (a .json file under 2 MB)"))
        data = json.loads(base64.b64decode(contents.split(",", 1)[1], validate=True))
        record = checked_saved_run(data, state.model.get().config.vocab_size)
    except (ValueError, binascii.Error, RuntimeError) as why:
        return no_update, _("Could not open that file: {why}").format(why=why), no_update
    n = len(record["new_ids"])
    name = str(filename)[:80] if filename else _("the run")
    return record, ngettext("Opened {name}: {n} token.", "Opened {name}: {n} tokens.", n).format(name=name, n=n), \
        uuid.uuid4().hex


def share(n_clicks, generation):
    """Save the finished run in the shared cache -> a link that reopens it (for a week)."""
    if not n_clicks:
        raise PreventUpdate
    try:
        record = checked_saved_run(checked_record(generation), state.model.get().config.vocab_size)
    except (ValueError, RuntimeError) as why:
        return str(why)
    if generation.get("live") or not record["steps"]:
        return _("Share a run once it has ended.")
    key = secrets.token_urlsafe(12)
    state.views_cache.set(f"run:{key}", record, timeout=RUN_LINK_S)
    href = f"?view={TAB}&run={key}"
    return [html.Span(_("Link to this run (works for a week): ")), html.A(href, href=href, className="gen-run-link")]


def open_link(search):
    """?run=KEY in the address bar -> the saved run."""
    try:
        key = parse_qs((search or "").lstrip("?"), max_num_fields=50).get("run", [None])[0]
    except ValueError:
        raise PreventUpdate from None
    if not key:
        raise PreventUpdate
    if not (len(key) <= 32 and key.replace("-", "").replace("_", "").isalnum()):
        return no_update, _("That run link is not valid."), no_update
    record = state.views_cache.get(f"run:{key}")
    if not isinstance(record, dict):
        return no_update, _("That run link has expired or never existed: runs are kept for a week."), no_update
    return record, "", uuid.uuid4().hex


# ----------------------------------------------------------------------------------------------------------
# Layout

def _button(label, id_, title, disabled=False):
    return html.Button(label, id=id_, n_clicks=0, title=title, className="player-button", disabled=disabled)


def number_box(label, id_, value, low, high, step, title):
    return html.Label([label + " ", dcc.Input(id=id_, type="number", min=low, max=high, step=step, value=value,
                                              debounce=True, style={"width": "4.5em"})],
                      className="gen-setting", title=title)


def section():
    return html.Div([
        common.explanation(_(EXPLANATION), EQUATION),
        html.Div([
            html.Label([_("Tokens to generate "),
                        dcc.Input(id=N_TOKENS, type="number", min=1, max=MAX_NEW_TOKENS, step=1, value=20,
                                  debounce=True, style={"width": "5em"})]),
            dcc.Checklist(id=CACHE, options=[{"label": _(" use KV cache"), "value": "on"}], value=["on"], inline=True,
                          style={"display": "inline-block", "margin": "0 1em"}),
            html.Button(_("Generate"), id=RUN, n_clicks=0, className="run-button"),
            html.Button(_("■ Stop"), id=STOP_RUN, n_clicks=0, disabled=True, className="player-button",
                        title=_("Stop the generation in progress")),
            html.Span(_(" Uses the temperature, top-k, top-p and seed above; move them during a run to steer it."),
                      className="hint"),
        ], className="gen-controls"),
        html.Details([
            html.Summary(_("Penalties and stop sequences")),
            html.Div([
                number_box(_("Repetition penalty"), REPETITION, 1.0, MIN_REPETITION_PENALTY, MAX_REPETITION_PENALTY, 0.05,
                     _("Above 1: tokens already in the text are less likely (their logits divided by it); 1 is off")),
                number_box(_("Presence penalty"), PRESENCE, 0.0, -MAX_PENALTY, MAX_PENALTY, 0.1,
                     _("Subtracted once from the logit of every token already in the text; 0 is off")),
                number_box(_("Frequency penalty"), FREQUENCY, 0.0, -MAX_PENALTY, MAX_PENALTY, 0.1,
                     _("Subtracted from a token's logit once per time it appears in the text; 0 is off")),
                html.Label(["Stop at (one per line; \\n is a newline) ",
                            dcc.Textarea(id=STOP_AT, value="", rows=2, maxLength=400,
                                         style={"width": "12em", "verticalAlign": "top"})], className="gen-setting"),
            ], className="gen-settings"),
        ], className="gen-more"),
        # The step line changes at every poll: not read out. The text is, in phrases (ANNOUNCE_JS).
        html.Div(id=LIVE, className="gen-live"),
        html.Div(id=ANNOUNCE, className="visually-hidden", **{"aria-live": "polite", "aria-atomic": "true"}),
        html.Div(id=LIVE_NOTE, className="gen-live-note", role="status"),
        html.Div(id=MESSAGE, className="view-message", role="alert"),
        html.Div([
            _button(_("▶ Play"), PLAY, _("Replay the tokens one by one"), True),
            _button(_("❚❚ Pause"), PAUSE, _("Pause"), True),
            _button(_("+1 Step"), STEP, _("Reveal one more token"), True),
            _button(_("Show all"), SHOW_ALL, _("Reveal every token"), True),
            html.Span(_("Speed (tokens per second)"), id=SPEED + "-label", style={"marginInline": "1em 0.5em"}),
            html.Div(dcc.Slider(id=SPEED, min=1, max=20, step=1, value=4, marks={1: "1", 5: "5", 10: "10", 20: "20"},
                                allow_direct_input=False), className="gen-speed-slider",
                     style={"display": "inline-block", "width": "220px", "verticalAlign": "middle"},
                     **{"data-label-id": SPEED + "-label"}),
            html.Span(id=PROGRESS, className="gen-progress", style={"marginInlineStart": "1em"}),
            dcc.Store(id=PROGRESS_WORDS, data={"shown": _("{shown} / {total} tokens"),
                                               "step": _(" · every view shows step {step}")}),
            html.Span(_("Reduced motion is on: Play shows one more token at a time."), className="reduced-motion-note"),
        ], className="gen-player"),
        html.Div([html.Span(id=PROMPT_TEXT, className="gen-prompt-text"), html.Span(id=TOKENS)], id=TEXT,
                 className="gen-text",
                 style={"whiteSpace": "pre-wrap", "fontSize": "1.3em", "lineHeight": "1.7", "padding": "0.6em",
                        "border": "1px solid #ddd", "borderRadius": "6px", "maxHeight": "22em", "overflowY": "auto",
                        "margin": "0.5em 0"}),
        html.Div(id=CHANGES, className="gen-changes"),
        html.Div([_button(_("Back to the prompt"), BACK, _("Every view shows the prompt again"), True),
                  _button(_("Whole text"), WHOLE, _("Every view shows the prompt and all generated tokens"), True),
                  _button(_("Download run (JSON)"), DOWNLOAD_BUTTON, _("Save this run with its per-step settings"),
                          True),
                  dcc.Upload(html.Button(_("Open a saved run…"), className="player-button", n_clicks=0,
                                         title=_("Open a run file downloaded earlier")),
                             id=UPLOAD, accept=".json,application/json", max_size=MAX_UPLOAD_BYTES,
                             style={"display": "inline-block"}),
                  _button(_("Link to this run"), SHARE, _("Keep this run on the server and get a link that reopens it"),
                          True),
                  dcc.Download(id=DOWNLOAD)], className="gen-navigation"),
        html.Div(id=SHARE_LINK, className="gen-share-link"),
        html.Div(id=STOP, className="gen-stop", role="status"),
        html.Div(id=TIMINGS, className="gen-timings"),
        accessible_graph(STEPS_FIGURE, _("Time and KV cache per step")),
        dcc.Store(id=PLAYER, data={"shown": 0, "playing": False, "total": 0}),
        dcc.Store(id=SESSION, data=uuid.uuid4().hex),
        dcc.Store(id=JOB),
        dcc.Store(id=RENDERED),
        dcc.Interval(id=INTERVAL, interval=250, disabled=True),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=True),
    ], className="view view-generation")


# The player: a live run shows every token as it comes; a finished one can be replayed. Its buttons are off
# until there is something to play.
PLAYER_JS = """
function(play, pause, step, all, ticks, generation, speed, player) {
    const ctx = window.dash_clientside.callback_context;
    const fired = (ctx.triggered || []).map(t => t.prop_id.split(".")[0]);
    const total = generation && Array.isArray(generation.steps) ? generation.steps.length : 0;
    const live = !!(generation && generation.live);
    let shown = player && Number.isInteger(player.shown) ? Math.min(player.shown, total) : 0;
    let playing = !!(player && player.playing);
    const rate = Math.min(20, Math.max(1, Number(speed) || 4));
    if (fired.includes("%(GENERATION)s") || live) { shown = total; playing = false; }
    else if (fired.includes("%(PLAY)s")) {
        if (shown >= total) { shown = 0; }
        // Readers who asked for less motion: nothing moves by itself, Play shows one more token.
        if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) { shown = Math.min(total, shown + 1); }
        else { playing = total > 0; }
    }
    else if (fired.includes("%(PAUSE)s")) { playing = false; }
    else if (fired.includes("%(STEP)s")) { playing = false; shown = Math.min(total, shown + 1); }
    else if (fired.includes("%(ALL)s")) { playing = false; shown = total; }
    else if (fired.includes("%(INTERVAL)s") && playing) { shown = Math.min(total, shown + 1); }
    if (shown >= total) { playing = false; }
    const idle = total === 0 || live;
    return [{shown: shown, playing: playing, total: total}, !playing, Math.round(1000 / rate),
            idle, idle || !playing, idle, idle, total === 0, total === 0, idle, idle];
}
""" % {"GENERATION": ids.GENERATION, "PLAY": PLAY, "PAUSE": PAUSE, "STEP": STEP, "ALL": SHOW_ALL,
       "INTERVAL": INTERVAL}

# Chips and markers up to `shown` are visible, the step on screen highlighted; while a run is live the text box
# keeps its newest tokens in view.
REVEAL_JS = """
function(player, chips, sequence, generation, words) {
    const ctx = window.dash_clientside.callback_context;
    const chipIds = ctx.outputs_list[0].map(o => o.id.index), markIds = ctx.outputs_list[1].map(o => o.id.index);
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
    const styles = chipIds.map(i => i >= shown ? %(HIDDEN)s : (i === current ? %(CURRENT)s : %(CHIP)s));
    const marks = markIds.map(i => i >= shown ? %(MARK_HIDDEN)s : %(MARK)s);
    const total = generation && Array.isArray(generation.steps) ? generation.steps.length : 0;
    if (generation && generation.live) {
        setTimeout(function () {
            const box = document.getElementById("%(TEXT)s");
            if (box) { box.scrollTop = box.scrollHeight; }
        }, 0);
    }
    const where = current >= 0 ? words.step.replace("{step}", current) : "";
    return [styles, marks, total ? words.shown.replace("{shown}", shown).replace("{total}", total) + where : ""];
}
""" % {"HIDDEN": json.dumps(HIDDEN_STYLE), "CURRENT": json.dumps(CURRENT_STYLE), "CHIP": json.dumps(CHIP_STYLE),
       "MARK": json.dumps(MARK_STYLE), "MARK_HIDDEN": json.dumps(MARK_HIDDEN_STYLE), "TEXT": TEXT}

# What a screen reader says during a run: the new text in phrases, never token by token. A phrase is at least
# ANNOUNCE_TOKENS tokens and ends at a sentence's end or after ANNOUNCE_MS (a slow machine's tokens still come in
# groups); the rest is read when the run ends. A run opened from a file or a link is not read out (it is on the
# page). A new run starts again from its first token.
ANNOUNCE_MS, ANNOUNCE_TOKENS = 2000, 3
ANNOUNCE_JS = """
function(generation) {
    const none = window.dash_clientside.no_update;
    if (!generation || !Array.isArray(generation.steps)) { return none; }
    const said = window.__generationSaid || (window.__generationSaid = {steps: 0, at: 0, live: false});
    const steps = generation.steps, live = !!generation.live;
    if (steps.length < said.steps || (live && !said.live)) { said.steps = 0; said.at = Date.now(); }
    const wasLive = said.live;
    said.live = live;
    if (!live && !wasLive) { said.steps = steps.length; return none; }
    const fresh = steps.slice(said.steps);
    const words = fresh.map(s => String(s.chip || "").replace(/\\u21b5/g, "")).join("");
    const ended = /[.!?;:\\n]/.test(words) || Date.now() - said.at >= %(MS)d;
    if (!words.trim() || (live && !(ended && fresh.length >= %(TOKENS)d))) { return none; }
    said.steps = steps.length;
    said.at = Date.now();
    return words.trim();
}
""" % {"MS": ANNOUNCE_MS, "TOKENS": ANNOUNCE_TOKENS}

# The controls a live run reads; the global sliders live in the page skeleton.
STEERING = [Input(ids.TEMPERATURE, "value"), Input(ids.TOP_K, "value"), Input(ids.TOP_P, "value"),
            Input(REPETITION, "value"), Input(PRESENCE, "value"), Input(FREQUENCY, "value")]


def register(app) -> None:
    register_figures(app, STEPS_FIGURE)
    app.callback(
        Output(ids.GENERATION, "data"), Output(MESSAGE, "children"),
        Output(ids.SEQUENCE, "data", allow_duplicate=True), Output(JOB, "data"), Output(POLL, "disabled"),
        Output(LIVE, "children"), Output(RENDERED, "data"),
        Input(RUN, "n_clicks"),
        State(ids.SEQUENCE, "data"), State(ids.PROMPT, "value"), State(N_TOKENS, "value"), State(CACHE, "value"),
        State(ids.TEMPERATURE, "value"), State(ids.TOP_K, "value"), State(ids.TOP_P, "value"),
        State(ids.SEED, "value"), State(REPETITION, "value"), State(PRESENCE, "value"), State(FREQUENCY, "value"),
        State(STOP_AT, "value"), State(ids.GENERATION, "data"), State(SESSION, "data"),
        prevent_initial_call=True,
    )(generate)
    app.callback(
        Output(ids.GENERATION, "data", allow_duplicate=True), Output(TOKENS, "children", allow_duplicate=True),
        Output(JOB, "data", allow_duplicate=True), Output(POLL, "disabled", allow_duplicate=True),
        Output(LIVE, "children", allow_duplicate=True), Output(MESSAGE, "children", allow_duplicate=True),
        Output(RENDERED, "data", allow_duplicate=True), Output(LIVE_NOTE, "children", allow_duplicate=True),
        Input(POLL, "n_intervals"), State(JOB, "data"), State(SESSION, "data"), State(N_TOKENS, "value"),
        prevent_initial_call=True,
    )(poll)
    app.callback(Output(STOP_RUN, "disabled"), Input(JOB, "data"))(stop_disabled)
    app.callback(Output(LIVE_NOTE, "children"), *STEERING, State(JOB, "data"), State(SESSION, "data"),
                 prevent_initial_call=True)(steer)
    # Stop's answer goes to the note line, not to the stop line that the end of the run writes: a late answer
    # must not overwrite "Stopped after n tokens".
    app.callback(Output(LIVE_NOTE, "children", allow_duplicate=True), Input(STOP_RUN, "n_clicks"),
                 State(JOB, "data"), State(SESSION, "data"), prevent_initial_call=True)(stop)
    app.callback(
        Output(PROMPT_TEXT, "children"), Output(TOKENS, "children"), Output(STOP, "children"),
        Output(TIMINGS, "children"), Output(STEPS_FIGURE, "figure"), Output(CHANGES, "children"),
        Input(RENDERED, "data"), Input(ids.VIEW, "value"), State(ids.GENERATION, "data"),
    )(render)
    app.callback(Output(DOWNLOAD, "data"), Output(MESSAGE, "children", allow_duplicate=True),
                 Input(DOWNLOAD_BUTTON, "n_clicks"), State(ids.GENERATION, "data"),
                 prevent_initial_call=True)(download)
    app.callback(Output(ids.GENERATION, "data", allow_duplicate=True), Output(MESSAGE, "children", allow_duplicate=True),
                 Output(RENDERED, "data", allow_duplicate=True),
                 Input(UPLOAD, "contents"), State(UPLOAD, "filename"), prevent_initial_call=True)(open_file)
    app.callback(Output(SHARE_LINK, "children"), Input(SHARE, "n_clicks"), State(ids.GENERATION, "data"),
                 prevent_initial_call=True)(share)
    app.callback(Output(ids.GENERATION, "data", allow_duplicate=True), Output(MESSAGE, "children", allow_duplicate=True),
                 Output(RENDERED, "data", allow_duplicate=True),
                 Input(ids.URL, "search"), prevent_initial_call="initial_duplicate")(open_link)
    app.clientside_callback(
        PLAYER_JS,
        Output(PLAYER, "data"), Output(INTERVAL, "disabled"), Output(INTERVAL, "interval"),
        Output(PLAY, "disabled"), Output(PAUSE, "disabled"), Output(STEP, "disabled"), Output(SHOW_ALL, "disabled"),
        Output(BACK, "disabled"), Output(WHOLE, "disabled"), Output(DOWNLOAD_BUTTON, "disabled"),
        Output(SHARE, "disabled"),
        Input(PLAY, "n_clicks"), Input(PAUSE, "n_clicks"), Input(STEP, "n_clicks"), Input(SHOW_ALL, "n_clicks"),
        Input(INTERVAL, "n_intervals"), Input(ids.GENERATION, "data"), Input(SPEED, "value"),
        State(PLAYER, "data"),
    )
    app.clientside_callback(ANNOUNCE_JS, Output(ANNOUNCE, "children"), Input(ids.GENERATION, "data"))
    app.clientside_callback(
        REVEAL_JS,
        Output({"type": CHIP, "index": ALL}, "style"), Output({"type": MARK, "index": ALL}, "style"),
        Output(PROGRESS, "children"),
        Input(PLAYER, "data"), Input(TOKENS, "children"), Input(ids.SEQUENCE, "data"), State(ids.GENERATION, "data"),
        State(PROGRESS_WORDS, "data"),
    )
    app.callback(
        Output(ids.SEQUENCE, "data", allow_duplicate=True),
        Input({"type": CHIP, "index": ALL}, "n_clicks"), Input(BACK, "n_clicks"), Input(WHOLE, "n_clicks"),
        State(ids.GENERATION, "data"), State(ids.SEQUENCE, "data"),
        prevent_initial_call=True,
    )(select_step)
