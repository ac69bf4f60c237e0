"""An independent GPT-2 tokenizer to test ours against, built from the same ranks file but sharing no code with
`tiktoken`.

1. `write_gpt2_files` recovers GPT-2's `vocab.json` / `merges.txt` from the ranks: a multi-byte token of rank r
   was made by one merge, and BPE of its bytes with only the ranks below r stops at exactly that pair.
2. `OpenAIEncoder` is GPT-2's original pure-Python `encoder.py` (openai/gpt-2, MIT) reading those two files: the
   `regex` module with the original pattern, merges applied by merge rank.
The same two files also load into `transformers.GPT2Tokenizer` (Hugging Face `tokenizers`, Rust, Oniguruma regex).
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import regex

GPT2_ORIGINAL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte (printable Latin-1 bytes stand for themselves)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_ranks(path) -> dict[bytes, int]:
    ranks = {}
    for line in Path(path).read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def recover_merge(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The pair that made `token`: BPE over its bytes, allowing only merges into tokens ranked below it."""
    limit = ranks[token]
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < limit and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    assert len(parts) == 2, (token, parts)
    return parts[0], parts[1]


def write_gpt2_files(ranks_path, folder) -> Path:
    """Write vocab.json and merges.txt (GPT-2's formats) into `folder`; returns the folder."""
    folder = Path(folder)
    ranks = read_ranks(ranks_path)
    spell = bytes_to_unicode()
    as_text = lambda data: "".join(spell[b] for b in data)  # noqa: E731
    vocab = {as_text(token): rank for token, rank in ranks.items()}
    vocab["<|endoftext|>"] = 50256
    merges = [recover_merge(token, ranks) for token, _ in sorted(ranks.items(), key=lambda kv: kv[1]) if len(token) > 1]
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{as_text(a)} {as_text(b)}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


class OpenAIEncoder:
    """GPT-2's original encoder.py, trimmed to encode/decode; knows no special tokens."""

    def __init__(self, folder):
        folder = Path(folder)
        self.encoder = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        self.decoder = {v: k for k, v in self.encoder.items()}
        merges = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")[1:-1]
        self.bpe_ranks = {tuple(line.split()): i for i, line in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.pat = regex.compile(GPT2_ORIGINAL_PATTERN)
        self.cache = {}

    def bpe(self, token: str) -> list[str]:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):  # merge every occurrence of the bigram, left to right
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        self.cache[token] = list(word)
        return self.cache[token]

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in regex.findall(self.pat, text):
            piece = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[part] for part in self.bpe(piece))
        return ids

    def decode(self, ids) -> str:
        text = "".join(self.decoder[i] for i in ids)
        return bytes(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")
