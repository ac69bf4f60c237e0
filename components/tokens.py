"""Tokenization view: the prompt as the model reads it, one chip per token, with ids and exact bytes."""
from __future__ import annotations

from dash import Input, Output, html
from dash.exceptions import PreventUpdate

from . import ids, state
from .common import explanation


def chip(position: int, token, generated: bool) -> html.Span:
    """One token: its display text (spaces visible), id below; the title (hover) gives the exact bytes.
    Children are plain strings, so a token can never inject markup."""
    hex_bytes = " ".join(f"{b:02X}" for b in token.bytes)
    return html.Span([html.Span(token.text, className="chip-text"), html.Span(str(token.id), className="chip-id")],
                     title=f"position {position} · id {token.id} · bytes {hex_bytes} · {len(token.bytes)} byte(s)",
                     className="token-chip" + (" token-generated" if generated else ""))


def token_summary(n_tokens: int, text: str) -> str:
    n_chars, n_bytes = len(text), len(text.encode("utf-8", errors="replace"))
    ratio = f", {n_chars / n_tokens:.1f} characters per token" if n_tokens else ""
    return f"{n_tokens:,} tokens from {n_chars:,} characters ({n_bytes:,} bytes){ratio}."


def section():
    return [
        explanation(
            "GPT-2 does not read letters or words: a byte-level BPE tokenizer cuts the text into **tokens** from a "
            "vocabulary of 50,257, each with an id. Common words are one token (with their leading space, "
            "shown as ␣); rare words split into pieces; a piece of a multi-byte character shows as <0x..> bytes. "
            "Hover a token for its exact bytes.",
            r"(t_1, t_2, \dots, t_T) = \mathrm{BPE}(\mathrm{text}), \quad t_i \in \{0, 1, \dots, 50256\}"),
        html.Div(id="token-summary", className="token-summary"),
        html.Div(id="token-chips", className="token-chips"),
    ]


def register(app) -> None:
    @app.callback(Output("token-chips", "children"), Output("token-summary", "children"),
                  Input(ids.SEQUENCE, "data"), Input(ids.VIEW, "value"))
    @state.memoized
    def show_tokens(sequence, view):
        if view != "tokens" or not sequence:
            raise PreventUpdate
        tokenizer = state.model.get().tokenizer
        seq_ids = sequence["ids"]
        n_prompt = sequence.get("n_prompt", len(seq_ids))
        chips = [chip(i, tok, i >= n_prompt) for i, tok in enumerate(tokenizer.tokens(seq_ids))]
        summary = token_summary(len(seq_ids), tokenizer.decode(seq_ids))
        if n_prompt < len(seq_ids):
            summary += f" The last {len(seq_ids) - n_prompt} were generated."
        return chips, summary
