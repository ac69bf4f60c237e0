"""Tokenization view: the prompt as the model reads it, one chip per token, with ids and exact bytes."""
from __future__ import annotations

from dash import ALL, Input, Output, State, callback_context, dcc, html
from dash.exceptions import PreventUpdate

from . import figure_text as words
from . import ids, state
from .common import explanation, valid_index
from .figure_access import csv_id, figure_box, send_csv, text_id
from .figure_csv import Table, to_csv
from .i18n import N_, _, ngettext, number

# Chips drawn at once: Dash's renderer slows down faster than linearly with the number of components (1,024
# chips, three components each, blocked the browser for 27 s; 128 take a fraction of a second).
CHIPS_PER_PAGE = 128
CHIP = "token-chip"    # pattern-matching type of the token chips
MERGES = "token-merges"


def sequence_ids(sequence, vocab_size: int, n_ctx: int, empty: str = N_("Run a prompt to see its tokens.")
                 ) -> tuple[list[int] | None, int, str | None]:
    """The token ids and prompt length of a `sequence` store, checked (the store can be sent by hand):
    (ids, n_prompt, None), or (None, 0, message) when it cannot be shown (`empty` when there is no prompt)."""
    if not isinstance(sequence, dict) or not isinstance(sequence.get("ids"), list) or not sequence["ids"]:
        return None, 0, _(empty)
    seq = sequence["ids"]
    if len(seq) > n_ctx:
        return None, 0, _("This sequence has {n} tokens; the model reads at most {n_ctx}.").format(
            n=number(len(seq)), n_ctx=number(n_ctx))
    if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab_size for t in seq):
        return None, 0, _("This sequence holds something other than token ids 0 … {last}.").format(
            last=number(vocab_size - 1))
    n_prompt = sequence.get("n_prompt")
    if not (isinstance(n_prompt, int) and not isinstance(n_prompt, bool) and 0 < n_prompt <= len(seq)):
        n_prompt = len(seq)
    return seq, n_prompt, None


def chip(position: int, token, generated: bool) -> html.Button:
    """One token: its display text (spaces visible, stray bytes as <0x..>), its id below; the title (hover)
    gives the position, id and exact bytes in hex. Children are plain strings: a token never becomes markup.
    A button: clicking it (or Enter) shows how BPE built the token from its bytes."""
    hex_bytes = " ".join(f"{b:02X}" for b in token.bytes)
    n = len(token.bytes)
    title = " · ".join([_("position {position}").format(position=position), _("id {id}").format(id=token.id),
                        ngettext("bytes {hex} ({n} byte)", "bytes {hex} ({n} bytes)", n).format(hex=hex_bytes, n=n)]
                       + ([_("generated")] if generated else []) + [_("click to see its merges")])
    return html.Button([html.Span(token.text, className="chip-text"), html.Span(str(token.id), className="chip-id")],
                       id={"type": CHIP, "index": position}, n_clicks=0, title=title,
                       className="token-chip" + (" token-generated" if generated else ""))


def merges_panel(tokenizer, token_id: int, position: int) -> html.Div:
    """How BPE built one token: its bytes, then each merge in the order BPE made them (lowest rank first),
    with the two pieces, the piece they became and its rank. Text only."""
    token = tokenizer.token(token_id)
    merges = tokenizer.merges(token_id)
    start = " ".join(f"{b:02X}" for b in token.bytes)
    if not merges:
        why = (_("{token} (position {position}, id {id}) is a special token, added whole: BPE never builds it.")
               if token_id == tokenizer.eot_id else
               _("{token} (position {position}, id {id}) is a single byte: the 256 bytes are where BPE starts."))
        return html.Div(why.format(token=token.text, position=position, id=token_id), className="token-merges")
    rows = [html.Li([html.Span(_("rank {rank}:").format(rank=number(m.rank)) + " ", className="merge-rank"),
                     f"{tokenizer.token(m.left).text} + {tokenizer.token(m.right).text} → "
                     f"{tokenizer.token(m.merged).text}"]) for m in merges]
    return html.Div([
        html.B(_("How BPE built {token} (position {position}, id {id})").format(
            token=token.text, position=position, id=token_id)),
        html.P(_("It starts from the token's {n} bytes ({bytes}) and, again and again, merges the adjacent pair "
                 "whose merged piece has the lowest rank (the oldest merge GPT-2 learned), until no pair is in the "
                 "vocabulary.").format(n=len(token.bytes), bytes=start) + " "
               + ngettext("{n} merge:", "{n} merges:", len(merges)).format(n=len(merges))),
        html.Ol(rows)], className="token-merges")


def token_summary(tokens, text: str, n_prompt: int | None = None) -> str:
    """"T tokens from C characters (B bytes), …": how much text one token holds here. `tokens` is the list
    of Tokens (their exact bytes are counted) or just their number (then the text's UTF-8 is)."""
    if isinstance(tokens, int):
        n_tokens, n_bytes = tokens, len(text.encode("utf-8", errors="replace"))
    else:
        n_tokens, n_bytes = len(tokens), sum(len(t.bytes) for t in tokens)
    n_chars = len(text)
    if n_tokens:
        summary = ngettext("{n} token from {chars} characters ({bytes} bytes of UTF-8): {ratio} characters per token.",
                           "{n} tokens from {chars} characters ({bytes} bytes of UTF-8): {ratio} characters per token.",
                           n_tokens)
    else:
        summary = _("No tokens from {chars} characters ({bytes} bytes of UTF-8).")
    summary = summary.format(n=number(n_tokens), chars=number(n_chars), bytes=number(n_bytes),
                             ratio=number(n_chars / max(n_tokens, 1), 1))
    if n_prompt is not None and n_prompt < n_tokens:
        n_gen = n_tokens - n_prompt
        summary += " " + ngettext("The last {n} (orange) was generated by the model.",
                                  "The last {n} (orange) were generated by the model.", n_gen).format(n=number(n_gen))
    return summary


def section():
    return [
        explanation(
            _("GPT-2 does not read letters or words: a byte-level BPE tokenizer cuts the text into **tokens** "
              "from a vocabulary of 50,257, and the model only ever sees their ids. Common words are one token, "
              "usually with their leading space (shown as ␣, a new line as ↵); rare words split into pieces; a "
              "piece of a multi-byte character shows as <0x..> bytes. Hover a token for its exact bytes."),
            r"\text{text} \;\xrightarrow{\text{BPE}}\; (t_1, t_2, \dots, t_T), \qquad "
            r"t_i \in \{0, 1, \dots, 50\,256\}"),
        html.Div(id="token-summary", className="token-summary"),
        html.Div([html.Label(_("Tokens shown"), htmlFor="token-page"),
                  dcc.Dropdown(id="token-page", value=0, clearable=False, searchable=False)],
                 id="token-pager", className="inline-control", style={"display": "none"}),
        figure_box(html.Div(id="token-chips", className="token-chips"), "token-chips", _("The prompt's tokens")),
        html.Div(id=MERGES, role="status"),
    ]


def pages(n_tokens: int) -> list[dict]:
    """The pager's choices: positions 0–127, 128–255, … (0-based, as on the charts' axes)."""
    return [{"label": _("positions {start}–{last} of {n}").format(
                start=number(start), last=number(min(start + CHIPS_PER_PAGE, n_tokens) - 1), n=number(n_tokens)),
             "value": page} for page, start in enumerate(range(0, n_tokens, CHIPS_PER_PAGE))]


def tokens_table(tokens, n_prompt: int) -> Table:
    """Every token as the chips show it: position, id, text, its bytes in hex, and whether it was generated."""
    return Table(_("Tokens"), [_("position"), _("id"), _("token"), _("bytes"), _("generated")],
                 [[i, t.id, t.text, " ".join(f"{b:02X}" for b in t.bytes), i >= n_prompt] for i, t in enumerate(tokens)])


def register(app) -> None:
    @app.callback(Output("token-page", "value"), Input(ids.SEQUENCE, "data"))
    def first_page(_unused):
        return 0

    @app.callback(Output("token-chips", "children"), Output("token-summary", "children"),
                  Output("token-page", "options"), Output("token-pager", "style"), Output(text_id("token-chips"), "children"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"), Input("token-page", "value"))
    @state.memoized
    def show_tokens(sequence, view, page):
        if view != "tokens":
            raise PreventUpdate
        runtime = state.model.get()
        seq, n_prompt, problem = sequence_ids(sequence, runtime.config.vocab_size, runtime.config.n_ctx)
        if problem:
            return [], problem, [], {"display": "none"}, problem
        tokens = runtime.tokenizer.tokens(seq)
        choices = pages(len(tokens))
        start = (page if valid_index(page, len(choices)) else 0) * CHIPS_PER_PAGE
        stop = min(start + CHIPS_PER_PAGE, len(tokens))
        chips = [chip(i, tokens[i], i >= n_prompt) for i in range(start, stop)]
        pager = {"display": "flex" if len(choices) > 1 else "none"}
        return (chips, token_summary(tokens, runtime.tokenizer.decode(seq), n_prompt), choices, pager,
                words.tokens_text(tokens, start, stop))

    @app.callback(Output("token-chips-download", "data"), Input(csv_id("token-chips"), "n_clicks"),
                  State(ids.SEQUENCE, "data"), prevent_initial_call=True)
    def download_tokens(_clicks, sequence):
        runtime = state.model.get()
        seq, n_prompt, problem = sequence_ids(sequence, runtime.config.vocab_size, runtime.config.n_ctx)
        if problem:
            raise PreventUpdate
        return send_csv(to_csv([tokens_table(runtime.tokenizer.tokens(seq), n_prompt)]), "tokens")

    @app.callback(Output(MERGES, "children"), Input({"type": CHIP, "index": ALL}, "n_clicks"),
                  State(ids.SEQUENCE, "data"), prevent_initial_call=True)
    def show_merges(clicks, sequence):
        trigger = callback_context.triggered_id
        if not isinstance(trigger, dict) or not any(isinstance(c, int) and c > 0 for c in clicks or []):
            raise PreventUpdate  # chips drawn, nothing clicked
        runtime = state.model.get()
        seq, _unused, problem = sequence_ids(sequence, runtime.config.vocab_size, runtime.config.n_ctx)
        position = trigger.get("index")
        if problem or not valid_index(position, len(seq)):
            raise PreventUpdate
        return merges_panel(runtime.tokenizer, seq[position], position)
