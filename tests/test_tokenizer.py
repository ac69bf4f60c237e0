"""The tokenizer against two independent GPT-2 tokenizers built from the same ranks file (see tokenizer_reference),
plus round trips and the display form. Offline and fast."""
import random

import unicodedata

import pytest
import transformers

from model_runtime.tokenizer import EOT_ID, RANKS_FILE, GPT2Tokenizer, Token, display_text, get_tokenizer
from tests.tokenizer_reference import OpenAIEncoder, write_gpt2_files

EOT = "<|endoftext|>"

HANDWRITTEN = [
    "Data visualization empowers users to", "Hello world", " Hello world", "hello", "HELLO", "Hello, World!",
    # whitespace
    "", " ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", "\r\n", "\r\n\r\n", "\r", " \n ", "a  b", "a   b",
    "a\n\nb", "a \n b", "a\t\tb", "trailing space ", "trailing spaces   ", "  leading spaces", "\n  indented",
    "mixed \t\n \r\n whitespace", "end with newline\n", "word\u3000word", "non\u00a0breaking\u00a0space",
    # contractions, incl. ones the pattern does not know (uppercase, curly quote)
    "it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "I'M HERE", "it’s", "'s", "''s",
    "rock 'n' roll", "the dogs' bones", "'hello'", "'ll'd've're",
    # digits
    "0", "7", "42", "2024", "3.14159", "1,000,000", "12345678901234567890", "-17", "+1 (555) 010-9999", "v2.0.1",
    "0x1F600", "1e-9", "2^10=1024", "call 911", "①②③", "٣٤٥", "१२३",
    # punctuation and code
    "Hello!!!", "What?!", "...", "…", "--", "—", "“quoted”", "(parenthesised)", "[1, 2, 3]", "{'a': 1}",
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "x = {'key': [1, 2]}  # comment",
    "<div class=\"a\">b</div>", "SELECT * FROM t WHERE id = 3;", "#!/usr/bin/env python3", "a->b", "a => b",
    "$HOME/.config", "C:\\Users\\name", "e = mc^2", "snake_case_name", "camelCaseName", "@user #hashtag",
    # URLs and mail
    "https://example.com/path?q=1&r=two#frag", "http://localhost:8050/", "mailto:someone@example.org",
    "www.example.co.uk", "ftp://files.example.net/pub/file.tar.gz",
    # emoji: simple, skin tones, ZWJ sequences, flags, keycaps, variation selectors
    "😀", "👍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "1️⃣", "❤️", "I ❤️ NY", "🙂 ok", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    # scripts
    "中文字符", "日本語のテキスト", "한국어", "你好，世界！", "مرحبا بالعالم", "\u200fשלום עולם\u200e", "\u202eabc\u202c",
    "Привет, мир", "Ελληνικά", "नमस्ते दुनिया", "தமிழ்", "ภาษาไทย", "Tiếng Việt", "Ærøskøbing", "straße",
    # combining marks and normalisation forms
    "e\u0301", "café", "cafe\u0301", "Z\u0351\u0352a\u0353l\u0354go", "n\u0303", "\u0301",
    # math and symbols
    "∀x ∈ ℝ: x² ≥ 0", "∑_{i=1}^n i = n(n+1)/2", "α + β = γ", "½ ¼ ¾", "€100 £50 ¥1000", "©®™", "→←↑↓",
    "√2 ≈ 1.414", "∞", "x ≠ y",
    # control characters
    "\x00", "a\x00b", "\x01\x02\x03", "bell\x07", "esc\x1b[31mred\x1b[0m", "\x7f", "\x85", "x\u2028y\u2029z",
    "\u200b", "zero\u200bwidth", "soft\u00adhyphen", "\ufeffBOM",
    # long words
    "a" * 300, "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "abc" * 100, "😀" * 50, "1" * 200, "-" * 120, " " * 64, "\n" * 40, "Ab" * 80,
    # mixed
    "The year 2024 was 🔥, wasn't it? 中文 and العربية.", "Price: $19.99 (was $29.99) — save 33%!",
    "He said: \"I'll be back.\"\n\tThen left.", "line1\r\nline2\rline3\n",
]
WITH_EOT = [EOT, f"{EOT}{EOT}", f"text{EOT}more", f"text {EOT} more", f" {EOT} ", f"{EOT}\n\nNext document",
            f"end.{EOT}", "<|endoftext|", "<|endoftext|>>", "<<|endoftext|>", f"x\n{EOT}\ny"]
PIECES = [
    "the", " the", "The", " of", "users", " users", "data", " visualization", "it's", " don't", " I'M", "'S",
    " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", " \t ", "42", " 3.14", "1000000", ",", ".", "!?", "...", "(", ")",
    "{", "}", "=>", "://", "😀", "👍🏽", "👩‍💻", "🇯🇵", "中文", " 日本", "مرحبا", "\u200f", "שלום", "e\u0301",
    "नमस्ते", "∑", " ∞", "½", "\x00", "\x1b", "\u200b", "\u00a0", "x" * 40, "Straße", "ÆØÅ", "_", "#", "@",
]


def generated(n=150, seed=20240601):
    """Seeded random concatenations of pieces: unusual neighbours (space before emoji, digits after CJK, ...)."""
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(2, 8))) for _ in range(n)]


CORPUS = HANDWRITTEN + generated()


@pytest.fixture(scope="session")
def tok() -> GPT2Tokenizer:
    return get_tokenizer()


@pytest.fixture(scope="session")
def gpt2_files(tmp_path_factory):
    return write_gpt2_files(RANKS_FILE, tmp_path_factory.mktemp("gpt2-vocab"))


@pytest.fixture(scope="session")
def openai_ref(gpt2_files):
    return OpenAIEncoder(gpt2_files)


@pytest.fixture(scope="session")
def hf_ref(gpt2_files):
    # transformers 5 has no pure-Python GPT-2 tokenizer any more: this is Hugging Face `tokenizers` (Rust). The
    # pure-Python reference is OpenAIEncoder; both are independent of tiktoken.
    return transformers.GPT2Tokenizer.from_pretrained(str(gpt2_files))


def test_known_ids(tok):
    assert tok.encode("Data visualization empowers users to") == [6601, 32704, 795, 30132, 2985, 284]
    assert tok.encode(" Hello world") == [18435, 995]


def test_corpus_is_large_and_varied():
    assert len(CORPUS) >= 200 and len(set(CORPUS)) >= 200
    assert not any(EOT in s for s in CORPUS)  # strings with EOT are compared in their own tests


def test_recovered_files_are_gpt2s(gpt2_files):
    merges = (gpt2_files / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert merges[0] == "#version: 0.2" and merges[1:4] == ["Ġ t", "Ġ a", "h e"] and len(merges[1:-1]) == 50000


@pytest.mark.parametrize("text", CORPUS)
def test_matches_openai_encoder(tok, openai_ref, text):
    assert tok.encode(text) == openai_ref.encode(text)


def test_matches_hugging_face(tok, hf_ref):
    mismatches = [s for s in CORPUS if tok.encode(s) != hf_ref.encode(s, add_special_tokens=False)]
    assert mismatches == []


def test_endoftext(tok, openai_ref, hf_ref):
    assert tok.encode(EOT) == [EOT_ID] and tok.eot_id == EOT_ID == 50256
    assert tok.encode(f"a{EOT}b") == [64, EOT_ID, 65]
    for text in WITH_EOT:
        # allowed: the special token cuts the text, each side is encoded on its own (as Hugging Face does)
        expected = []
        for i, part in enumerate(text.split(EOT)):
            expected += ([EOT_ID] if i else []) + openai_ref.encode(part)
        assert tok.encode(text) == expected == hf_ref.encode(text, add_special_tokens=False), text
        # not allowed: plain text, as GPT-2's original encoder (which knows no special tokens) reads it
        assert tok.encode(text, allow_special=False) == openai_ref.encode(text), text
        assert EOT_ID not in tok.encode(text, allow_special=False)
        assert tok.decode(tok.encode(text)) == text == tok.decode(tok.encode(text, allow_special=False))


def test_round_trip(tok):
    for text in CORPUS + WITH_EOT:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.decode_bytes(ids) == text.encode("utf-8")


def test_lone_surrogates_do_not_raise(tok):
    for text in ["\ud800", "a\udfffb", "\udc80\udc81", "x\ud83d", "\ud83d\ude00"]:
        ids = tok.encode(text)
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert "\ud800" not in tok.decode(ids)
    assert tok.decode(tok.encode("a\ud800b")) == "a\ufffdb"  # lone: replaced
    assert [t.text for t in tok.tokens(tok.encode("\ud800"))] == ["\\ufffd"]  # shown as an escape, not as the character
    assert tok.decode(tok.encode("\ud83d\ude00")) == "😀"  # a pair: joined into its character


def test_decode_cut_character(tok):
    ids = tok.encode("👍")  # [0xF0 0x9F 0x91] [0x8D]
    assert tok.decode(ids[:1]) == "\ufffd"
    assert tok.decode_bytes(ids[:1]) == "👍".encode()[:3]


def test_token_bytes_concatenate(tok):
    for text in CORPUS:
        ids = tok.encode(text)
        tokens = tok.tokens(ids)
        assert b"".join(t.bytes for t in tokens) == text.encode("utf-8")
        assert [t.id for t in tokens] == ids


def test_display_forms(tok):
    users = tok.token(2985)
    assert users == Token(2985, b" users", "␣users")
    assert tok.token(tok.encode("\n")[0]).text == "↵"
    assert [t.text for t in tok.tokens(tok.encode("\t\n\n"))] == ["⇥", "↵↵"]
    assert [t.text for t in tok.tokens(tok.encode("\r\n"))] == ["\\x0d", "↵"]
    assert [t.text for t in tok.tokens(tok.encode("a\x00"))] == ["a", "\\x00"]
    assert tok.token(9525).text == "\\u200b" and tok.token(1849).text == "\\xa0"  # zero-width space, no-break space
    thumbs = tok.tokens(tok.encode("👍"))  # an emoji split across two tokens
    assert [t.text for t in thumbs] == ["<0xF0><0x9F><0x91>", "<0x8D>"]
    assert tok.token(8582).bytes == b"\xf0\x9f" and tok.token(8582).text == "<0xF0><0x9F>"
    assert tok.token(EOT_ID) == Token(EOT_ID, EOT.encode(), EOT)
    assert tok.token(2634).text == "é"
    assert tok.token(4210).bytes == "\ufffd".encode() and tok.token(4210).text == "\\ufffd"  # a real U+FFFD


def test_display_never_shows_replacement_character(tok):
    texts = [s for s in CORPUS if any(ord(c) > 0x2000 for c in s)]
    assert len(texts) > 50
    for text in texts:
        for t in tok.tokens(tok.encode(text)):
            assert "\ufffd" not in t.text, (text, t)


def test_no_display_form_draws_a_missing_glyph_box(tok):
    """A lone combining mark sits on a dotted circle; an invisible selector, private-use or unassigned character is
    escaped (the logit lens once drew a missing-glyph box for such a token)."""
    assert [tok.token(i).text for i in (24333, 37929, 48869)] == ["◌\u064e", "\\ufe0f", "◌\u0336"]
    assert display_text("\ue000x".encode()) == "\\ue000x"  # private use (no GPT-2 token holds one whole)
    for i in range(tok.vocab_size):
        text = tok.token(i).text
        assert unicodedata.category(text[0]) not in ("Mn", "Me"), i
        assert not any(unicodedata.category(c) in ("Co", "Cn", "Cs") for c in text), i


def test_whole_vocabulary(tok):
    assert tok.vocab_size == 50257
    seen = set()
    for i in range(tok.vocab_size):
        t = tok.token(i)
        assert t.id == i and t.bytes and t.bytes == tok.token_bytes(i) and t.text and "\ufffd" not in t.text
        assert isinstance(tok.decode([i]), str)
        seen.add(t.bytes)
    assert len(seen) == tok.vocab_size  # every id has its own bytes
    for bad in (-1, tok.vocab_size, 10**12):
        with pytest.raises(ValueError):
            tok.token(bad)
        with pytest.raises(ValueError):
            tok.decode([bad])


def test_singleton_and_cheap_instances(tok):
    assert get_tokenizer() is tok
    assert GPT2Tokenizer().encoding is tok.encoding  # the BPE tables load once per process
