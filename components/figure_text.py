"""Each figure in words: its text alternative for screen readers, computed from the same arrays its builder
draws (what it shows for the current state, and the key numbers: the largest weights, the top guesses).
Pure functions, numpy in, one sentence or a few out; every word through `_()`, every number through `number`.
A figure carries its text in `layout.meta.description` (`attach`), which the page's paragraph shows."""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from . import i18n
from .i18n import _, ngettext


_SPEC = re.compile(r"(?P<sign>\+)?,?(?:\.(?P<digits>\d+))?(?P<kind>[dfg%])")


def number(value, spec: str = ".2f") -> str:
    """Every number in a text alternative, as the reader's language writes it (components/i18n.py: decimal and
    group marks, where % goes), from a Python format spec (".2f", "+.3f", ".1%", ",d"; "g" keeps Python's
    significant digits), with a real minus sign (screen readers say "minus", not "hyphen")."""
    match = _SPEC.fullmatch(spec)
    kind = match["kind"] if match else None
    if kind == "d":
        text = i18n.number(int(value))
    elif kind == "f":
        text = i18n.number(float(value), int(match["digits"] or 6))
    elif kind == "%":
        text = i18n.percent(float(value), int(match["digits"] or 0))
    else:
        text = format(value, spec)
    if match and match["sign"] and float(value) >= 0 and kind != "g":
        text = "+" + text
    return text.replace("-", "−")


def attach(figure: go.Figure, text: str) -> go.Figure:
    """The figure carrying its text alternative."""
    return figure.update_layout(meta={"description": text})


def text_of(figure) -> str:
    """The text alternative a figure (go.Figure or the plain dict the page holds) carries, or ""."""
    layout = figure.layout.to_plotly_json() if isinstance(figure, go.Figure) else (figure or {}).get("layout") or {}
    meta = layout.get("meta")
    return meta.get("description", "") if isinstance(meta, dict) else ""


def token_name(label: str) -> str:
    """A token as a sentence names it: an axis label "5:␣to" becomes "to" (the position prefix and the visible
    space are for the chart's eye, not for the ear)."""
    text = label.split(":", 1)[1] if ":" in label and label.split(":", 1)[0].isdigit() else label
    return text.replace("␣", " ").strip() or text


def quoted(label: str) -> str:
    return _("“{token}”").format(token=token_name(label))


def join(items: Sequence[str]) -> str:
    return _("; ").join(items)


def _largest(matrix: np.ndarray) -> tuple[int, int, float]:
    """(row, column, value) of the entry largest in size (NaN ignored)."""
    m = np.nan_to_num(np.asarray(matrix, dtype=np.float64), nan=0.0)
    r, c = np.unravel_index(int(np.argmax(np.abs(m))), m.shape)
    return int(r), int(c), float(m[r, c])


def _finite_range(matrix) -> tuple[float, float]:
    m = np.asarray(matrix, dtype=np.float64)
    m = m[np.isfinite(m)]
    return (float(m.min()), float(m.max())) if m.size else (0.0, 0.0)


# ----------------------------------------------------------------------------------------------------------
# Tokens

def tokens_text(tokens: Sequence, start: int, stop: int, listed: int = 20) -> str:
    """The token chips of positions start..stop-1 (Tokens: .text, .id), the first `listed` of them named."""
    named = [_("{token} (id {id})").format(token=_("“{token}”").format(token=t.text), id=t.id)
             for t in tokens[start:min(stop, start + listed)]]
    text = _("Tokens {first}–{last} of {n} (␣ marks a space): {tokens}").format(
        first=number(start, ",d"), last=number(stop - 1, ",d"), n=number(len(tokens), ",d"), tokens=join(named))
    if stop - start > listed:
        text += _("; and {more} more (the CSV lists them all)").format(more=number(stop - start - listed, ",d"))
    return text + "."


# ----------------------------------------------------------------------------------------------------------
# Embeddings

def embedding_text(parts: dict[str, np.ndarray], labels: list[str], total: int | None = None) -> str:
    """Heatmaps of token rows × dimensions, one per part (token embedding, position embedding, sum)."""
    sentences = []
    if total is not None and total > len(labels):
        sentences.append(_("The last {shown} of {total} tokens.").format(shown=number(len(labels), ",d"),
                                                                         total=number(total, ",d")))
    for name, matrix in parts.items():
        low, high = _finite_range(matrix)
        row, dim, value = _largest(matrix)
        sentences.append(_("{part}: {rows} tokens × {dims} dimensions, values from {low} to {high}; the largest in "
                           "size is {value}, dimension {dim} of {token}.").format(
            part=name, rows=number(matrix.shape[0], ",d"), dims=number(matrix.shape[1], ",d"), low=number(low),
            high=number(high), value=number(value), dim=dim, token=quoted(labels[row])))
    return " ".join(sentences)


def embedding_norms_text(tok: np.ndarray, pos: np.ndarray, labels: list[str]) -> str:
    total = np.linalg.norm(np.asarray(tok, np.float32) + np.asarray(pos, np.float32), axis=1)
    longest, shortest = int(np.argmax(total)), int(np.argmin(total))
    return _("Vector lengths per token: the sum is longest for {long} ({long_value}) and shortest for {short} "
             "({short_value}); token embeddings are {tok} long on average, position embeddings {pos}.").format(
        long=quoted(labels[longest]), long_value=number(total[longest]), short=quoted(labels[shortest]),
        short_value=number(total[shortest]), tok=number(np.linalg.norm(tok, axis=1).mean()),
        pos=number(np.linalg.norm(pos, axis=1).mean()))


# ----------------------------------------------------------------------------------------------------------
# Attention, one head

def qkv_text(q: np.ndarray, k: np.ndarray, v: np.ndarray, labels: list[str], key_labels: list[str],
             head: str) -> str:
    parts = []
    for name, matrix, rows in ((_("queries"), q, labels), (_("keys"), k, key_labels), (_("values"), v, key_labels)):
        row, dim, value = _largest(matrix)
        parts.append(_("{what}: largest {value}, dimension {dim} of {token}").format(
            what=name, value=number(value), dim=dim, token=quoted(rows[row])))
    return _("{head}: queries, keys and values, {rows} tokens × {dims} dimensions each. {parts}.").format(
        head=head, rows=number(q.shape[0], ",d"), dims=q.shape[1], parts=join(parts))


def attends_text(pattern: np.ndarray, labels: list[str], key_labels: list[str], head: str, row: int | None = None,
                 top: int = 2) -> str:
    """"Block 5, head 1: the token “to” attends most to “users” (0.62), then to “Data” (0.21)." for one query
    row of the pattern (the last by default: the token whose next token the model predicts)."""
    row = pattern.shape[0] - 1 if row is None else row
    weights = np.nan_to_num(np.asarray(pattern[row], dtype=np.float64), nan=-1.0)
    order = [int(j) for j in np.argsort(-weights, kind="stable")[:top] if weights[j] >= 0]
    if not order:
        return _("{head}: the token {query} sees none of the keys shown.").format(head=head, query=quoted(labels[row]))
    text = _("{head}: the token {query} attends most to {key} ({weight})").format(
        head=head, query=quoted(labels[row]), key=quoted(key_labels[order[0]]), weight=number(weights[order[0]]))
    for j in order[1:]:
        text += _(", then to {key} ({weight})").format(key=quoted(key_labels[j]), weight=number(weights[j]))
    return text + "."


def scores_text(arrays: dict, labels: list[str], key_labels: list[str], head: str) -> str:
    """The four stages: raw scores, scaled, masked, softmax pattern."""
    pattern = arrays["pattern"]
    raw_low, raw_high = _finite_range(arrays["raw"])
    low, high = _finite_range(arrays["scaled"])
    hidden = int(np.isnan(arrays["masked"]).sum())
    weights = np.nan_to_num(pattern.astype(np.float64), nan=-1.0)
    weights[arrays["q_pos"] == 0] = -1.0  # the first token can only attend to itself: always 1
    i, j = np.unravel_index(int(np.argmax(weights)), weights.shape)
    return " ".join([
        attends_text(pattern, labels, key_labels, head),
        _("Raw scores q·k run from {raw_low} to {raw_high}; divided by √{d}, from {low} to {high}; the causal mask "
          "hides {hidden} cells (later tokens).").format(raw_low=number(raw_low), raw_high=number(raw_high),
                                                         d=arrays["q"].shape[1], low=number(low), high=number(high),
                                                         hidden=number(hidden, ",d")),
        _("The strongest attention of any later token: {query} to {key} ({weight}).").format(
            query=quoted(labels[i]), key=quoted(key_labels[j]), weight=number(weights[i, j]))])


def overview_text(pattern: np.ndarray, window: tuple[int, int, int]) -> str:
    T = pattern.shape[0]
    q0, k0, size = window
    first = float(np.asarray(pattern, dtype=np.float64)[:, 0].mean())
    return _("The whole attention pattern, {T} × {T} tokens; the charts below show queries {q0}–{q1} and keys "
             "{k0}–{k1}. On average a query gives {first} of its attention to the first token.").format(
        T=number(T, ",d"), q0=number(q0, ",d"), q1=number(q0 + size - 1, ",d"), k0=number(k0, ",d"),
        k1=number(k0 + size - 1, ",d"), first=number(first, ".1%"))


def head_output_text(z: np.ndarray, labels: list[str], head: str) -> str:
    lengths = np.linalg.norm(np.asarray(z, dtype=np.float64), axis=1)
    row, dim, value = _largest(z)
    return _("{head}: the head's output z, {rows} tokens × {dims} dimensions; the longest row is {long} "
             "({long_value}), the shortest {short} ({short_value}); the largest value in size is {value}, "
             "dimension {dim} of {token}.").format(
        head=head, rows=number(z.shape[0], ",d"), dims=z.shape[1], long=quoted(labels[int(np.argmax(lengths))]),
        long_value=number(lengths.max()), short=quoted(labels[int(np.argmin(lengths))]),
        short_value=number(lengths.min()), value=number(value), dim=dim, token=quoted(labels[row]))


def projection_text(contributions: np.ndarray, labels: list[str], head: int) -> str:
    """contributions [heads, T]: ‖z_h W_O[h]‖ per head and token."""
    last = contributions[:, -1].astype(np.float64)
    order = np.argsort(-last, kind="stable")[:2]
    most = _("For the last token {token}, head {first} wrote most into the residual stream ({first_value})").format(
        token=quoted(labels[-1]), first=int(order[0]) + 1, first_value=number(last[order[0]]))
    if len(order) > 1:
        most += _(", then head {second} ({second_value})").format(second=int(order[1]) + 1,
                                                                  second_value=number(last[order[1]]))
    return most + ". " + _("The open head {head} writes {mean} on average over the tokens shown; all {n} heads "
                           "together make the attention output.").format(
        head=head + 1, mean=number(float(contributions[head].mean())), n=contributions.shape[0])


def head_view_lines(patterns: dict[int, np.ndarray], focus: int | None, side: str, rows: Sequence[int],
                    cols: Sequence[int], min_weight: float) -> list[tuple[float, int, int, int]]:
    """(weight, head, query, key) of every line the head view draws (weight at least min_weight, a key not
    after its query, only the focused token's lines when one is focused), largest first."""
    r, c = np.asarray(rows), np.asarray(cols)
    keep = c[None, :] <= r[:, None]
    if side == "query" and focus in rows:
        keep &= (r == focus)[:, None]
    elif side == "key" and focus in cols:
        keep &= (c == focus)[None, :]
    lines = []
    for head, pattern in patterns.items():
        sub = np.asarray(pattern, dtype=np.float32)[np.ix_(r, c)]
        ii, jj = np.nonzero(keep & (sub >= min_weight))
        lines += [(float(sub[i, j]), head, int(r[i]), int(c[j])) for i, j in zip(ii, jj)]
    return sorted(lines, key=lambda line: -line[0])


def head_view_text(lines: list[tuple[float, int, int, int]], texts: list[str], layer: int, min_weight: float,
                   top: int = 3) -> str:
    """`lines` from head_view_lines."""
    if not lines:
        return _("Head view of block {block}: no weight reaches {min}; attention is spread thin.").format(
            block=layer + 1, min=number(min_weight, ".0%"))
    strongest = [_("head {head}: {query} to {key} ({weight})").format(
        head=h + 1, query=quoted(texts[i]), key=quoted(texts[j]), weight=number(w)) for w, h, i, j in lines[:top]]
    return _("Head view of block {block}: {n} lines of at least {min} join queries to the keys they attend to. "
             "The strongest: {strongest}.").format(block=layer + 1, n=number(len(lines), ",d"),
                                                   min=number(min_weight, ".0%"), strongest=join(strongest))


def qk_terms_text(q_i: np.ndarray, k_j: np.ndarray, query: str, key: str, top: int = 3) -> str:
    products = np.asarray(q_i, dtype=np.float64) * np.asarray(k_j, dtype=np.float64)
    order = np.argsort(-np.abs(products), kind="stable")[:top]
    terms = [_("d = {d} ({value})").format(d=int(d), value=number(products[d], "+.3f")) for d in order]
    return _("The {n} products q[d]·k[d] for {query} to {key} add up to {total}; the largest in size: "
             "{terms}.").format(n=len(products), query=quoted(query), key=quoted(key),
                                total=number(products.sum(), ".3f"), terms=join(terms))


# ----------------------------------------------------------------------------------------------------------
# All heads

def _head(block: int, head: int) -> str:
    return _("block {block}, head {head}").format(block=block + 1, head=head + 1)


def grid_text(values: np.ndarray, outlined: list[tuple[int, int]], statistic: str, spec: str) -> str:
    """values [blocks, heads] of the chosen statistic; `outlined` the heads the grid outlines."""
    L, H = values.shape
    heads = [_("{head} ({value})").format(head=_head(l, h), value=number(float(values[l, h]), spec))
             for l, h in outlined]
    return _("Every head's attention pattern, {L} blocks × {H} heads. Outlined, as they stand out by {statistic}: "
             "{heads}.").format(L=L, H=H, statistic=statistic.lower(), heads=join(heads))


def statistic_text(values: np.ndarray, name: str, spec: str) -> str:
    flat = values.astype(np.float64)
    high = np.unravel_index(int(np.argmax(flat)), flat.shape)
    low = np.unravel_index(int(np.argmin(flat)), flat.shape)
    return _("{name}, every head: highest at {high} ({high_value}), lowest at {low} ({low_value}), mean "
             "{mean}.").format(name=name, high=_head(*high), high_value=number(flat[high], spec), low=_head(*low),
                               low_value=number(flat[low], spec), mean=number(flat.mean(), spec))


# ----------------------------------------------------------------------------------------------------------
# MLP

def activation_text(values: np.ndarray, neurons: np.ndarray, labels: list[str], title: str) -> str:
    """values [tokens, neurons shown]."""
    m = np.asarray(values, dtype=np.float64)
    hi, lo = np.unravel_index(int(np.argmax(m)), m.shape), np.unravel_index(int(np.argmin(m)), m.shape)
    return _("{title}: {rows} tokens × {n} neurons. Highest {high} at neuron {high_neuron} of {high_token}; lowest "
             "{low} at neuron {low_neuron} of {low_token}.").format(
        title=title, rows=number(m.shape[0], ",d"), n=number(m.shape[1], ",d"), high=number(m[hi]),
        high_neuron=int(neurons[hi[1]]), high_token=quoted(labels[hi[0]]), low=number(m[lo]),
        low_neuron=int(neurons[lo[1]]), low_token=quoted(labels[lo[0]]))


def gelu_text(pre: np.ndarray, post: np.ndarray, token: str) -> str:
    pre, post = np.asarray(pre, dtype=np.float64), np.asarray(post, dtype=np.float64)
    negative = pre < 0
    top = int(np.argmax(pre))
    return _("The GELU curve with the {n} neurons of {token}: {negative} of them are negative before GELU and come "
             "out between {low} and 0; the largest, {pre}, comes out as {post}.").format(
        n=number(len(pre), ",d"), token=quoted(token), negative=number(int(negative.sum()), ",d"),
        low=number(float(post[negative].min()) if negative.any() else 0.0), pre=number(pre[top]),
        post=number(post[top]))


def top_neurons_text(post_row: np.ndarray, token: str, n: int = 3) -> str:
    order = np.argsort(-post_row, kind="stable")[:n]
    neurons = [_("neuron {neuron} ({value})").format(neuron=int(i), value=number(float(post_row[i])))
               for i in order]
    return _("Most active neurons for {token}: {neurons}.").format(token=quoted(token), neurons=join(neurons))


def contraction_text(mlp_out: np.ndarray, labels: list[str], position: int) -> str:
    lengths = np.linalg.norm(np.asarray(mlp_out, dtype=np.float64), axis=1)
    low, high = _finite_range(mlp_out[position])
    return _("Length of the MLP's output per token: largest for {long} ({long_value}), smallest for {short} "
             "({short_value}). The output vector of {token} runs from {low} to {high}.").format(
        long=quoted(labels[int(np.argmax(lengths))]), long_value=number(lengths.max()),
        short=quoted(labels[int(np.argmin(lengths))]), short_value=number(lengths.min()),
        token=quoted(labels[position]), low=number(low), high=number(high))


# ----------------------------------------------------------------------------------------------------------
# Residual stream and LayerNorm

def stream_text(stage_labels: list[str], norms: np.ndarray, labels: list[str]) -> str:
    """norms [stages, tokens]."""
    last = norms[:, -1]
    s, t = np.unravel_index(int(np.argmax(norms)), norms.shape)
    return _("Size of the residual stream of {token}: {first} after the embedding, {end} after {stage}. The largest "
             "in the chart: {top}, {top_token} after {top_stage}.").format(
        token=quoted(labels[-1]), first=number(float(last[0])), end=number(float(last[-1])), stage=stage_labels[-1],
        top=number(float(norms[s, t])), top_token=quoted(labels[t]), top_stage=stage_labels[s])


def writes_text(attn: np.ndarray, mlp: np.ndarray, token: str) -> str:
    a, m = int(np.argmax(attn)), int(np.argmax(mlp))
    return _("What each block writes into the stream of {token}: attention most in block {attn_block} ({attn}), the "
             "MLP most in block {mlp_block} ({mlp}).").format(token=quoted(token), attn_block=a + 1,
                                                              attn=number(float(attn[a])), mlp_block=m + 1,
                                                              mlp=number(float(mlp[m])))


def layernorm_text(before: np.ndarray, after: np.ndarray, mean: float, scale: float, title: str) -> str:
    b_low, b_high = _finite_range(before)
    a_low, a_high = _finite_range(after)
    return _("{title}: before LayerNorm the {n} values run from {b_low} to {b_high} (mean {mean}, scale {scale}); "
             "after it, from {a_low} to {a_high}.").format(
        title=title, n=number(len(before), ",d"), b_low=number(b_low), b_high=number(b_high), mean=number(mean, ".3f"),
        scale=number(scale, ".3f"), a_low=number(a_low), a_high=number(a_high))


# ----------------------------------------------------------------------------------------------------------
# Logit lens, ablation, next token, generation

def lens_text(stage_labels: list[str], token_labels: list[str], top_ids: np.ndarray, top_probs: np.ndarray,
              texts: dict[int, str], column: int) -> str:
    """top_ids / top_probs [stages, positions, k]; `column` the position the reader chose (in the window)."""
    guess = lambda s, t: _("{token} ({p})").format(token=quoted(texts[int(top_ids[s, t, 0])]),  # noqa: E731
                                                   p=number(float(top_probs[s, t, 0])))
    final = int(top_ids[-1, column, 0])
    settled = len(stage_labels) - 1
    while settled > 0 and int(top_ids[settled - 1, column, 0]) == final:
        settled -= 1
    return _("Logit lens at {token}: after the embedding the top guess is {first}; after {last_stage} it is "
             "{last}, the top guess from {settled} on. Last row, every position: {row}.").format(
        token=quoted(token_labels[column]), first=guess(0, column), last_stage=stage_labels[-1],
        last=guess(len(stage_labels) - 1, column), settled=stage_labels[settled],
        row=join([_("{position}: {guess}").format(position=quoted(label), guess=guess(len(stage_labels) - 1, t))
                  for t, label in enumerate(token_labels)]))


def picker_text(selected) -> str:
    if not selected:
        return _("Every head is on: click a head in the grid to switch it off.")
    return _("Heads switched off ({n}): {heads}.").format(n=len(selected), heads=join([_head(l, h)
                                                                                       for l, h in sorted(selected)]))


def comparison_text(result: dict, texts: list[str], n_off: int) -> str:
    """`result` from ablation.compare; texts the bars' labels (in result["ids"] order)."""
    base, ablated = np.asarray(result["base"], np.float64), np.asarray(result["ablated"], np.float64)
    top_b, top_a = int(np.argmax(base)), int(np.argmax(ablated))
    moved = int(np.argmax(np.abs(ablated - base)))
    heads = ngettext("{n} head off", "{n} heads off", n_off).format(n=n_off)
    return _("With {heads}, the top next token goes from {before} ({before_p}) to {after} ({after_p}); KL "
             "divergence {kl} bits. The biggest change among the tokens shown: {moved}, {moved_before} → "
             "{moved_after}.").format(
        heads=heads, before=quoted(texts[top_b]), before_p=number(base[top_b], ".3f"), after=quoted(texts[top_a]),
        after_p=number(ablated[top_a], ".3f"), kl=number(result["kl_bits"], ".4f"), moved=quoted(texts[moved]),
        moved_before=number(base[moved], ".3f"), moved_after=number(ablated[moved], ".3f"))


def candidates_text(rows: list[dict], highlight: int | None, label: str, last: str, top: int = 3) -> str:
    """`rows` from output.candidate_rows (most likely first); `highlight` the drawn (or generated) token."""
    likely = [_("{token} ({p})").format(token=quoted(r["text"]), p=number(r["prob_before"], ".3f")) for r in rows[:top]]
    kept = sum(bool(r["kept_top_p"]) for r in rows)
    text = _("After {last}: the most likely next tokens are {likely}. {kept} of the {n} shown are kept by top-k and "
             "top-p.").format(last=quoted(last), likely=join(likely), kept=kept, n=len(rows))
    drawn = next((r for r in rows if r["id"] == highlight), None)
    if drawn is not None:
        text += " " + _("The {label}: {token}, probability {p} after filtering.").format(
            label=label, token=quoted(drawn["text"]), p=number(drawn["prob"], ".3f"))
    elif highlight is not None:
        text += " " + _("The {label} is not among them.").format(label=label)
    return text


def steps_text(steps: list[dict]) -> str:
    times = [float(s.get("ms", 0)) for s in steps]
    text = _("{n} steps. Step 0, the prefill, read the prompt in {prefill} ms.").format(
        n=len(steps), prefill=number(times[0], ".1f"))
    if len(steps) > 1:
        batches = [float(s.get("batch_size", 1)) for s in steps[1:]]
        text += " " + _("The other steps took a median of {median} ms each, in batches of {batch} runs on "
                        "average.").format(median=number(float(np.median(times[1:])), ".1f"),
                                           batch=number(float(np.mean(batches)), ".1f"))
    last = steps[-1]
    return text + " " + _("The KV cache ends at {positions} positions ({mb} MB).").format(
        positions=number(int(last.get("cache_len", 0)), ",d"), mb=number(last.get("cache_bytes", 0) / 1e6, ".2f"))


def class_answers_text(question: dict, counts: list[int]) -> str:
    """The lesson's class-answers chart: how many chose each answer, the model's value for each, the right one."""
    choices = question["choices"]
    counts = list(counts[:len(choices)]) + [0] * (len(choices) - len(counts))
    total = sum(counts)
    answers = [_("“{choice}” {n} ({share})").format(choice=c, n=n, share=number(n / total if total else 0, ".0%"))
               for c, n in zip(choices, counts)]
    model = [_("“{choice}” {value}").format(choice=c, value=number(float(v), ".3g"))
             for c, v in zip(choices, question["model_values"])]
    return _("The class ({total}): {answers}. Beside it, {label}: {model}. The model's answer: “{answer}”.").format(
        total=ngettext("{n} answer", "{n} answers", total).format(n=total), answers=join(answers), label=question["model_label"], model=join(model),
        answer=choices[question["answer"]])


# ----------------------------------------------------------------------------------------------------------
# The decoding lab

def beam_text(result: dict, greedy: dict | None = None) -> str:
    """`result`, `greedy`: BeamResult.to_dict() records (the tree's search and greedy search's)."""
    candidates = [c for step in result["steps"] for c in step["candidates"]]
    count = {status: sum(c["status"] == status for c in candidates) for status in ("kept", "finished", "pruned")}
    text = _("Beam search of width {width} over {steps} steps looked at {candidates} candidates: {kept} kept as "
             "beams, {finished} finished, {pruned} pruned.").format(
        width=result["settings"]["num_beams"], steps=number(len(result["steps"]), ",d"),
        candidates=number(len(candidates), ",d"), kept=number(count["kept"], ",d"),
        finished=number(count["finished"], ",d"), pruned=number(count["pruned"], ",d"))
    if result["hypotheses"]:
        best = result["hypotheses"][0]
        text += " " + _("The best hypothesis, {text}, has {tokens} tokens, log-probability {logprob} and score "
                        "{score}.").format(text=_("“{token}”").format(token=best["text"]),
                                           tokens=number(len(best["token_ids"]), ",d"),
                                           logprob=number(best["logprob"], ".3f"), score=number(best["score"], ".3f"))
    if greedy is not None and greedy["hypotheses"]:
        first = greedy["hypotheses"][0]
        text += " " + _("Greedy search wrote {text}: log-probability {logprob}, score {score}.").format(
            text=_("“{token}”").format(token=first["text"]), logprob=number(first["logprob"], ".3f"),
            score=number(first["score"], ".3f"))
    return text


def rounds_text(cells: list[dict], k: int) -> str:
    """`cells` from speculative_view.round_cells: the draft's proposals and the target's own token, per round."""
    drafted = [c for c in cells if c["q"] is not None]
    kept = sum(c["status"] == "accepted" for c in cells)
    own = [c for c in cells if c["q"] is None]
    rounds = len(own)
    return _("{rounds} rounds of up to {k} draft tokens: the target kept {kept} of the {proposed} proposals "
             "({rate}) and added a token of its own each round ({bonus} of them bonus tokens, after keeping all), "
             "{tokens} new tokens in all, {per_round} per round.").format(
        rounds=number(rounds, ",d"), k=k, kept=number(kept, ",d"), proposed=number(len(drafted), ",d"),
        rate=number(kept / len(drafted) if drafted else 0.0, ".0%"),
        bonus=number(sum(c["status"] == "bonus" for c in own), ",d"), tokens=number(kept + rounds, ",d"),
        per_round=number((kept + rounds) / rounds if rounds else 0.0, ".2f"))


def weights_text(rows: list[dict]) -> str:
    """`rows` from quantize.compare_dtypes, float32 first."""
    parts = [_("{dtype}: {mb} MB of weights, {speed} tokens/s, largest |Δlogit| {dlogit}, top 10 next tokens: "
               "{shared} of 10 shared with float32, {order}").format(
        dtype=r["dtype"], mb=number(r["weight_bytes"] / 1e6, ".1f"), speed=number(r["decode_tokens_per_s"], ".1f"),
        dlogit=number(r["max_abs_dlogit"], ".4f"), shared=r["top10_overlap"],
        order=_("in the same order") if r["top10_same_order"] else _("in another order")) for r in rows]
    return _("The weights compared on this prompt. {rows}.").format(rows=join(parts))


def decode_time_text(costs: list[dict], rates: dict) -> str:
    """`costs` from decode_time.step_costs (step 0 the prefill), `rates` the machine's measured rates."""
    prefill, decode = costs[0], costs[1:]
    text = _("Step 0, the prefill of {tokens} tokens (the time to first token): measured {ms} ms; floors {memory} ms "
             "to read its bytes and {compute} ms for its arithmetic.").format(
        tokens=number(prefill["tokens"], ",d"), ms=number(prefill["ms"], ".2f"),
        memory=number(prefill["memory_ms"], ".3f"), compute=number(prefill["compute_ms"], ".3f"))
    if decode:
        memory = float(np.mean([c["memory_ms"] for c in decode]))
        compute = float(np.mean([c["compute_ms"] for c in decode]))
        text += " " + _("The {n} decode steps: measured {tpot} ms per token on average (time per output token); "
                        "floors {memory} ms for memory and {compute} ms for arithmetic, so decode is {bound}.").format(
            n=number(len(decode), ",d"), tpot=number(np.mean([c["ms"] for c in decode]), ".2f"),
            memory=number(memory, ".3f"), compute=number(compute, ".3f"),
            bound=_("memory-bound") if memory >= compute else _("arithmetic-bound"))
    return text + " " + _("FLOPs per byte: {prefill} in the prefill, {decode} in the last step; the ridge point "
                          "is {ridge}.").format(prefill=number(prefill["intensity"], ".2f"),
                                                decode=number(costs[-1]["intensity"], ".2f"),
                                                ridge=number(rates["flops"] / rates["bandwidth"], ".1f"))
