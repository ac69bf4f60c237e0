"""GPT-2's byte-level BPE, offline: `tiktoken` does the merging, over the ranks shipped in assets/.

`Token.text` is a display form, so a class can read what the model reads. Rules, applied per character of the
token's bytes, in this order:
- a space (U+0020) is shown as "␣", a newline as "↵", a tab as "⇥";
- other characters that are invisible or that would reorder or break the line around them are shown as Python-style
  escapes: control characters (Cc: NUL, "\\r", DEL, ...) as "\\x00", "\\x0d"; format characters (Cf: zero-width
  joiner, right-to-left marks, ...), line/paragraph separators and spaces other than U+0020 as "\\u200d", "\\xa0",
  "\\U000e0067" (the shortest of \\xNN, \\uNNNN, \\UNNNNNNNN that fits); so is a real U+FFFD in the text (GPT-2 has
  tokens for it, from mangled training data), as "\\ufffd", so that "�" never appears in a display form;
- a combining mark that begins a token (GPT-2 has tokens that are a lone Arabic or Hebrew vowel sign, or a
  combining stroke) has no letter to sit on and would draw on the previous label or as a missing-glyph box: it is
  shown on a dotted circle, "◌َ", as type books show marks; a variation selector there (U+FE0F, id 37929) is
  invisible on its own and is escaped, "\\ufe0f"; characters with no glyph anywhere (private use, unassigned)
  are escaped too;
- bytes that do not form a complete UTF-8 character within the token (a token may hold the first two bytes of an
  emoji) are shown one by one as "<0xF0><0x9F>" (upper-case hex), never as the replacement character U+FFFD;
- everything else as is; "<|endoftext|>" (id 50256) therefore reads "<|endoftext|>".
The form is for reading, not for parsing back (a literal "\\x00" or "<0xF0>" in the text looks the same);
`Token.bytes` is exact.
"""
from __future__ import annotations

import base64
import functools
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import tiktoken

RANKS_FILE = Path(__file__).parent / "assets" / "gpt2.tiktoken"  # MIT, from openai-whisper's sdist; rank == GPT-2 id
EOT = "<|endoftext|>"
EOT_ID = 50256
N_VOCAB = 50257
try:  # tiktoken's own spelling of GPT-2's pre-tokenizer (possessive quantifiers, same splits, faster)
    from tiktoken_ext.openai_public import r50k_pat_str as GPT2_PATTERN
except ImportError:  # GPT-2's original: contractions, letters, digits, other symbols (optional leading space), spaces
    GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}
ESCAPED_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Zl", "Zp", "Zs"}  # Zs minus " ", which is in VISIBLE
MARK_CATEGORIES = {"Mn", "Me"}
DOTTED_CIRCLE = "◌"


def _variation_selector(char: str) -> bool:
    return 0xFE00 <= ord(char) <= 0xFE0F or 0xE0100 <= ord(char) <= 0xE01EF


@dataclass(frozen=True)
class Token:
    id: int
    bytes: bytes
    text: str  # readable display form (see the module docstring)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def display_text(data: bytes) -> str:
    """Readable form of a token's bytes (rules in the module docstring)."""
    out, i = [], 0
    while i < len(data):
        for size in (1, 2, 3, 4):  # the shortest prefix that decodes is one whole character
            try:
                char = data[i:i + size].decode("utf-8")
                break
            except UnicodeDecodeError:
                continue
        else:  # a stray byte: part of a character split across tokens, or not UTF-8 at all
            out.append(f"<0x{data[i]:02X}>")
            i += 1
            continue
        if char in VISIBLE:
            out.append(VISIBLE[char])
        elif char == "\ufffd" or unicodedata.category(char) in ESCAPED_CATEGORIES \
                or (not out and _variation_selector(char)):
            out.append(_escape(char))
        elif not out and unicodedata.category(char) in MARK_CATEGORIES:
            out.append(DOTTED_CIRCLE + char)
        else:
            out.append(char)
        i += size
    return "".join(out)


def without_lone_surrogates(text: str) -> str:
    """A Python str may hold surrogates (e.g. JSON from a browser, or a file read with surrogateescape): pairs are
    joined into their character, lone ones have no UTF-8 form and become U+FFFD, as any UTF-8 encoder writes them.
    So encode never raises, and such text round-trips only up to that replacement."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@functools.cache
def _ranks() -> dict[bytes, int]:
    # The ranks file is parsed here rather than with tiktoken.load.load_tiktoken_bpe: that one keeps a copy in a
    # shared temp cache keyed by the path, and would silently prefer a stale copy over an updated asset.
    ranks = {}
    for line in RANKS_FILE.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=_ranks(),
                             special_tokens={EOT: EOT_ID}, explicit_n_vocab=N_VOCAB)


@dataclass(frozen=True)
class Merge:
    """One BPE merge: the adjacent pieces `left` and `right` (token ids) become `merged`."""
    left: int
    right: int
    merged: int
    rank: int       # the merged piece's rank: lower merges first (GPT-2's rank is the id; merges.txt line rank - 256)
    position: int   # index of `left` among the pieces before the merge


def bpe_merges(data: bytes) -> tuple[list[int], list[Merge]]:
    """BPE of one pre-token (a word with its leading space, say), step by step: start from single bytes, and
    repeatedly merge the adjacent pair whose merged piece has the lowest rank (the leftmost on a tie), as
    tiktoken does, until no pair is in the vocabulary. Returns (token ids, the merges in the order done; their
    ranks never decrease)."""
    ranks = _ranks()
    parts = [data[i:i + 1] for i in range(len(data))]
    merges = []
    while len(parts) > 1:
        pair_ranks = [ranks.get(parts[i] + parts[i + 1], math.inf) for i in range(len(parts) - 1)]
        best = min(range(len(pair_ranks)), key=pair_ranks.__getitem__)
        if pair_ranks[best] == math.inf:
            break
        merged = parts[best] + parts[best + 1]
        merges.append(Merge(ranks[parts[best]], ranks[parts[best + 1]], ranks[merged], ranks[merged], best))
        parts[best:best + 2] = [merged]
    return [ranks[p] for p in parts], merges


class GPT2Tokenizer:
    """Cheap to create: the BPE tables are loaded once per process and shared."""

    vocab_size = N_VOCAB
    eot_id = EOT_ID

    def __init__(self):
        self.encoding = _encoding()

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """With allow_special, "<|endoftext|>" in the text becomes EOT_ID; without, it is spelled out as text."""
        text = without_lone_surrogates(text)
        if allow_special:
            return self.encoding.encode(text, allowed_special={EOT})
        return self.encoding.encode(text, disallowed_special=())

    def decode_bytes(self, ids) -> bytes:
        return self.encoding.decode_bytes([self._check(i) for i in ids])

    def decode(self, ids) -> str:
        """A character cut off by the end of `ids` (or any other broken UTF-8) reads as U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(self._check(id))

    def token(self, id: int) -> Token:
        data = self.token_bytes(id)
        return Token(int(id), data, display_text(data))

    def tokens(self, ids) -> list[Token]:
        return [self.token(i) for i in ids]

    def merges(self, id: int) -> list[Merge]:
        """How token `id` is built from its bytes by successive merges in rank order (see `bpe_merges`); a
        single byte needs none. <|endoftext|> is a special token, added whole: no merges either."""
        if self._check(id) == EOT_ID:
            return []
        return bpe_merges(self.token_bytes(id))[1]  # ends in [id] for every GPT-2 token (tested)

    def _check(self, id) -> int:
        # tiktoken answers a bad id with KeyError or OverflowError; one clear error is easier to handle.
        id = int(id)  # also takes numpy / 0-d torch integers
        if not 0 <= id < N_VOCAB:
            raise ValueError(f"token id {id} is outside GPT-2's vocabulary (0..{N_VOCAB - 1})")
        return id


@functools.cache
def get_tokenizer() -> GPT2Tokenizer:
    return GPT2Tokenizer()
