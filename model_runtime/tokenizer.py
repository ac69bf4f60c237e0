"""GPT-2's byte-level BPE, offline: `tiktoken` does the merging, over the ranks shipped in assets/.

Display form of a token (`Token.text`), so a class can read what the model reads:
- a space is shown as "␣", a newline as "↵", a tab as "⇥", a carriage return as "⏎";
- other control characters (and NUL) as escapes like "\\x00";
- bytes that do not form complete UTF-8 characters within the token (a token may hold half an emoji) as
  "<0xF0>" pieces, never as the replacement character;
- "<|endoftext|>" as is.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

RANKS_FILE = Path(__file__).parent / "assets" / "gpt2.tiktoken"  # MIT, from openai-whisper's sdist
EOT = "<|endoftext|>"
EOT_ID = 50256
# GPT-2's pre-tokenizer: contractions, letters, digits, other symbols, each with an optional leading space.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "⏎"}


@dataclass(frozen=True)
class Token:
    id: int
    bytes: bytes
    text: str  # readable display form (see the module docstring)


def display_text(data: bytes) -> str:
    """Readable form of a token's bytes: complete characters as text (spaces made visible), stray bytes as <0xNN>."""
    out, i = [], 0
    while i < len(data):
        for size in (1, 2, 3, 4):  # the shortest prefix that decodes is one whole character
            try:
                char = data[i:i + size].decode("utf-8")
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(f"<0x{data[i]:02X}>")
            i += 1
            continue
        out.append(VISIBLE.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 32 or ord(char) == 127 else char))
        i += size
    return "".join(out)


def without_lone_surrogates(text: str) -> str:
    """A Python str may hold surrogates (e.g. JSON from a browser): pairs are joined into their character,
    lone ones have no UTF-8 form and become U+FFFD, as any UTF-8 encoder writes them."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class GPT2Tokenizer:
    def __init__(self):
        self.encoding = tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN,
                                          mergeable_ranks=load_tiktoken_bpe(str(RANKS_FILE)),
                                          special_tokens={EOT: EOT_ID}, explicit_n_vocab=50257)
        self.vocab_size = self.encoding.n_vocab
        self.eot_id = EOT_ID

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        text = without_lone_surrogates(text)
        if allow_special:
            return self.encoding.encode(text, allowed_special={EOT})
        return self.encoding.encode(text, disallowed_special=())

    def decode_bytes(self, ids) -> bytes:
        return self.encoding.decode_bytes([int(i) for i in ids])

    def decode(self, ids) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(int(id))

    def token(self, id: int) -> Token:
        data = self.token_bytes(id)
        return Token(int(id), data, EOT if id == EOT_ID else display_text(data))

    def tokens(self, ids) -> list[Token]:
        return [self.token(i) for i in ids]


@functools.cache
def get_tokenizer() -> GPT2Tokenizer:
    return GPT2Tokenizer()
