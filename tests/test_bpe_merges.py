"""BPE merges as the Tokens view shows them: replaying them rebuilds exactly the tokenizer's ids."""
import regex

from model_runtime.tokenizer import EOT_ID, GPT2_PATTERN, N_VOCAB, _ranks, bpe_merges, get_tokenizer
from tests.test_tokenizer import CORPUS

BYTE_ID = {bytes([b]): _ranks()[bytes([b])] for b in range(256)}  # GPT-2 numbers the 256 bytes in its own order


def words() -> list[str]:
    """A few hundred words (each with and without a leading space) and the tokenizer tests' whole strings:
    English, accents, CJK, emoji with joiners and skin tones, digits, punctuation, runs of spaces, newlines."""
    found = sorted({w for text in CORPUS for w in text.split()})
    return found + [" " + w for w in found] + CORPUS


def replay(data: bytes, merges) -> list[int]:
    """Start from the single bytes and apply the merges as shown: each joins the pieces at its position."""
    pieces = [BYTE_ID[data[i:i + 1]] for i in range(len(data))]
    last_rank = -1
    for m in merges:
        assert pieces[m.position:m.position + 2] == [m.left, m.right]
        assert m.rank >= last_rank  # in rank order
        pieces[m.position:m.position + 2] = [m.merged]
        last_rank = m.rank
    return pieces


def test_corpus_is_a_few_hundred_varied_words():
    corpus = words()
    assert len(corpus) > 300
    assert any(any(ord(c) > 0x1F000 for c in w) for w in corpus)  # emoji
    assert any("  " in w or "\n" in w for w in corpus)


def test_replaying_merges_gives_the_tokenizers_ids():
    tok = get_tokenizer()
    for text in words():
        ids = tok.encode(text, allow_special=False)
        # The whole text: the pre-tokenizer's pieces, each merged from its bytes.
        replayed = []
        for piece in regex.findall(GPT2_PATTERN, text):
            data = piece.encode("utf-8")
            final, merges = bpe_merges(data)
            assert replay(data, merges) == final
            replayed += final
        assert replayed == ids, text
        # Each token of it: the merges the view shows for that token end in the token.
        for i in ids:
            assert replay(tok.token_bytes(i), tok.merges(i)) == [i]


def test_every_token_is_built_by_its_merges():
    tok = get_tokenizer()
    for i in range(N_VOCAB):
        if i == EOT_ID:
            assert tok.merges(i) == []  # a special token, added whole
            continue
        merges = tok.merges(i)
        assert (merges[-1].merged if merges else BYTE_ID[tok.token_bytes(i)]) == i
        assert len(merges) == len(tok.token_bytes(i)) - 1
    assert [m.merged for m in tok.merges(tok.encode(" visualization")[0])][-1] == 32704
