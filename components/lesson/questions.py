"""Predict, then reveal: questions whose answer is computed from the loaded model when asked, never written
down, so they hold for any weights (trained, untrained, another GPT-2 size).

`build(question, runtime, trace_for)` -> {"text", "choices", "answer" (index), "explanation", "model_values"
(the model's own distribution over the choices: probabilities where the question is about probabilities, else
1 for its answer), "model_label"}. `trace_for(ids)` returns the app's cached trace."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..heads import head_statistics
from ..i18n import _, ngettext, number, percent, percent_significant
from ..logit_lens import lens_stack, logit_lens
from ..residual import stream_norms


@dataclass(frozen=True)
class Question:
    kind: str      # a key of BUILDERS
    params: dict   # the builder's arguments (prompt, word, temperature, ...)


def build(question: Question, runtime, trace_for) -> dict:
    return BUILDERS[question.kind](runtime, trace_for, **question.params)


def _one_hot(n: int, index: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(n)]


def _percent(p: float) -> str:
    """Three significant digits, so an untrained model's 0.00213% does not read as 0.0%."""
    return percent_significant(p)


def _bin(value: float, edges: list[float]) -> int:
    """Index of the bin `value` falls in, bins split at `edges` (ascending; a value on an edge goes up)."""
    return int(np.searchsorted(edges, value, side="right"))


def token_count(runtime, trace_for, word: str) -> dict:
    n = len(runtime.tokenizer.encode(word))
    choices = ["1", "2", "3", _("{n} or more").format(n=4)]
    answer = min(n, 4) - 1
    pieces = " | ".join(t.text for t in runtime.tokenizer.tokens(runtime.tokenizer.encode(word)))
    return {"text": _("How many tokens does the word “{value}” (with its space) become?").format(value=word.strip()),
            "choices": choices,
            "answer": answer, "model_values": _one_hot(4, answer), "model_label": _("the tokenizer"),
            "explanation": ngettext("It becomes {n} token: {pieces} (see the chips above).",
                                    "It becomes {n} tokens: {pieces} (see the chips above).", n).format(
                n=n, pieces=pieces)}


def previous_head(runtime, trace_for, prompt: str) -> dict:
    """Three heads: the one with the largest previous-token share, the median one and the smallest, in block
    order, so the position of the answer gives nothing away."""
    trace = trace_for(runtime.tokenizer.encode(prompt))
    cfg = runtime.config
    shares = np.stack([head_statistics(trace[f"blocks.{l}.attn.hook_pattern"].numpy())["previous"]
                       for l in range(cfg.n_layer)])
    order = np.argsort(shares, axis=None, kind="stable")
    picks = sorted({int(order[-1]), int(order[len(order) // 2]), int(order[0])})
    heads = [divmod(p, cfg.n_head) for p in picks]
    values = [float(shares[b, h]) for b, h in heads]
    answer = int(np.argmax(values))
    b, h = heads[answer]
    return {"text": _("Which of these heads attends most to the previous token?"),
            "choices": [_("block {b}, head {h}").format(b=b + 1, h=h + 1) for b, h in heads], "answer": answer,
            "model_values": values, "model_label": _("share of attention on the previous token"),
            "explanation": _("Block {b}, head {h} puts {values} of each token's attention on the token just before: "
                             "its square in the grid is a diagonal just below the main one.").format(
                b=b + 1, h=h + 1, values=percent(values[answer]))}


def residual_growth(runtime, trace_for, prompt: str) -> dict:
    trace = trace_for(runtime.tokenizer.encode(prompt))
    _unused, norms = stream_norms(trace)
    ratio = float(norms[-1, -1] / norms[0, -1])
    choices = [_("it shrinks"), _("about the same (×0.8 to ×1.25)"), _("it grows up to 4×"),
               _("it grows more than 4×")]
    answer = _bin(ratio, [0.8, 1.25, 4.0])
    return {"text": _("From the embedding to after the last block, how does the size of the last token's "
                      "residual-stream vector change?"), "choices": choices, "answer": answer,
            "model_values": _one_hot(4, answer), "model_label": _("the model"),
            "explanation": _("Its size goes from {norms} to {norms2} (×{ratio}): every block adds to the stream; the "
                             "last column of the chart shows it.").format(
                norms=number(norms[0, -1], 1), norms2=number(norms[-1, -1], 1), ratio=number(ratio, 2))}


def lens_first_block(runtime, trace_for, prompt: str) -> dict:
    """Stages are the embedding and each block; choices group them into at most four ranges."""
    trace = trace_for(runtime.tokenizer.encode(prompt))
    labels, resid = lens_stack(trace, start=trace.logits.shape[0] - 1)
    ln, cpu = runtime.model.ln_f, {"device": "cpu", "dtype": torch.float32}
    top, _unused = logit_lens(resid, ln.weight.to(**cpu), ln.bias.to(**cpu), ln.eps, runtime.model.wte.weight.to(**cpu),
                              k=1)
    final = int(trace.logits[-1].argmax())
    first = next(s for s in range(len(labels)) if int(top[s, 0, 0]) == final)
    groups = np.array_split(np.arange(len(labels)), min(4, len(labels)))
    choices = [labels[g[0]] if len(g) == 1 else _("{first} to {last}").format(first=labels[g[0]], last=labels[g[-1]])
               for g in groups]
    answer = next(i for i, g in enumerate(groups) if first in g)
    word = runtime.tokenizer.token(final).text
    return {"text": _("Reading the residual stream after each block (the logit lens): where does the top guess first "
                      "equal the model's final answer?"), "choices": choices, "answer": answer,
            "model_values": _one_hot(len(choices), answer), "model_label": _("the model"),
            "explanation": _("The final answer “{word}” is first the top guess after {labels}: the last column of "
                             "the table, read from the top.").format(word=word, labels=labels[first])}


def next_top(runtime, trace_for, prompt: str) -> dict:
    """The model's four most likely next tokens, shown in alphabetical order."""
    logits = trace_for(runtime.tokenizer.encode(prompt)).logits[-1]
    probs = logits.double().softmax(-1)
    top = torch.topk(logits, 4).indices.tolist()
    texts = {t: runtime.tokenizer.token(t).text for t in top}
    shown = sorted(top, key=lambda t: (texts[t].lstrip("␣").lower(), t))
    answer = shown.index(top[0])
    return {"text": _("“{prompt}” … which of these four tokens does the model rank first next?").format(prompt=prompt),
            "choices": [texts[t] for t in shown], "answer": answer,
            "model_values": [float(probs[t]) for t in shown], "model_label": _("the model's probability"),
            "explanation": _("“{texts}” has probability {value}, the highest of all {value2} tokens: the first bar "
                             "of the chart.").format(
                texts=texts[top[0]], value=_percent(float(probs[top[0]])), value2=number(logits.shape[0]))}


def temperature_top(runtime, trace_for, prompt: str, temperature: float) -> dict:
    logits = trace_for(runtime.tokenizer.encode(prompt)).logits[-1].double()
    top = int(logits.argmax())
    before = float(logits.softmax(-1)[top])
    after = float((logits / temperature).softmax(-1)[top])
    choices = [_("below {p}").format(p=percent(0.25)), _("{low} to {high}").format(low=percent(0.25), high=percent(0.5)),
               _("{low} to {high}").format(low=percent(0.5), high=percent(0.75)), _("{p} or more").format(p=percent(0.75))]
    answer = _bin(after, [0.25, 0.5, 0.75])
    return {"text": _("The top candidate has probability {value} at temperature 1. What will it have at temperature "
                      "{temperature}?").format(value=_percent(before), temperature=temperature),
            "choices": choices, "answer": answer,
            "model_values": _one_hot(4, answer), "model_label": _("the model"),
            "explanation": _("It goes from {value} to {value2}: dividing the logits by {temperature} stretches their "
                             "gaps, and the softmax turns that into a sharper distribution (move the slider and "
                             "watch the first bar).").format(
                value=_percent(before), value2=_percent(after), temperature=temperature)}


def top_p_count(runtime, trace_for, prompt: str, top_p: float) -> dict:
    probs = trace_for(runtime.tokenizer.encode(prompt)).logits[-1].double().softmax(-1)
    cumulative = probs.sort(descending=True).values.cumsum(0)
    kept = int((cumulative < top_p).sum()) + 1  # the smallest set that reaches top_p
    choices = ["1", _("{low} to {high}").format(low=2, high=10), _("{low} to {high}").format(low=11, high=100),
               _("more than {n}").format(n=100)]
    answer = _bin(kept, [1.5, 10.5, 100.5])
    return {"text": _("With top-p = {top_p} (temperature 1, top-k off), how many tokens can still be drawn?").format(
        top_p=top_p),
            "choices": choices, "answer": answer, "model_values": _one_hot(4, answer), "model_label": _("the model"),
            "explanation": ngettext(
                "{n} token: the smallest set of most likely tokens whose probabilities add up to {top_p} (the "
                "cumulative line crosses {top_p} there).",
                "{n} tokens: the smallest set of most likely tokens whose probabilities add up to {top_p} (the "
                "cumulative line crosses {top_p} there).", kept).format(n=number(kept), top_p=number(top_p))}


BUILDERS = {"token_count": token_count, "previous_head": previous_head, "residual_growth": residual_growth,
            "lens_first_block": lens_first_block, "next_top": next_top, "temperature_top": temperature_top,
            "top_p_count": top_p_count}
