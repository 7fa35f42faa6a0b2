"""The shipped tokenizer follows docs/tokenizer.md: checked against a tiny pure-Python reference.

The reference below is written from the rules alone (not from HF's behaviour), so that a change in
`tokenizers` or in the pipeline that drifts from what the C tokenizer does is caught here.
"""

from __future__ import annotations

import gzip
import json
import string
import sys
from pathlib import Path

import pytest

# The one datasets root: $HIL_DATA_DIR, ../shared/datasets beside a checkout, or what
# `hil data fetch` wrote (hil.paths).
from hil.paths import datasets_dir  # noqa: E402
from hil.quant.tokenizer import (
    CLS,
    DEFAULT_TOKENIZER,
    SPECIAL_TOKENS,
    Tokenizer,
    TokenizerError,
)

DATASETS = datasets_dir()
WS = set(" \t\n\v\f\r")
PUNCT = set(string.punctuation)


# ---- reference implementation of the rules ------------------------------------------------------
def ref_words(text: str) -> list[str]:
    """Rules 2 and 3: ASCII lower-case, split on ASCII whitespace, isolate ASCII punctuation."""
    text = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)
    words, cur = [], []
    for c in text:
        if c in WS or c in PUNCT:
            if cur:
                words.append("".join(cur))
                cur = []
            if c in PUNCT:
                words.append(c)
        else:
            cur.append(c)
    if cur:
        words.append("".join(cur))
    return words


def ref_wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    """Rule 4: greedy longest match; too long or not coverable -> one [UNK]."""
    if len(word) > 100:
        return [1]
    out, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [1]
        out.append(found)
        start = end
    return out


def ref_encode(text: str, vocab: dict[str, int], max_len: int = 256) -> list[int]:
    ids = [CLS]
    for w in ref_words(text):
        ids.extend(ref_wordpiece(w, vocab))
    return ids[:max_len]


# ---- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.from_file()


@pytest.fixture(scope="module")
def vocab(tok: Tokenizer) -> dict[str, int]:
    return {t: i for i, t in enumerate(tok.vocab)}


EDGE_CASES = [
    "",
    " ",
    " \t\n\v\f\r ",
    "Hello, World!",
    "HELLO world",
    "[CLS] [SEP] [MASK] [PAD] [UNK]",  # literal special-token text is ordinary text
    "##ing ## #",
    "Café, naïve, ÉCOLE, Straße, ΣΊΣΥΦΟΣ",  # non-ASCII letters keep their case
    "e\u0301 (combining accent, not NFC-composed)",
    "日本語のテキスト 中文 한국어",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇫🇷",
    "a\u00a0b no-break space is not whitespace",
    "thin\u2009space and ideographic\u3000space and line\u2028sep",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeed",
    "control\x01\x02chars\x7fstay in words",
    "x" * 100,
    "x" * 101,
    "supercalifragilisticexpialidocious" * 3,
    "a" * 1000 + " b",
    "!!!???...,,,;;;",
    "don't can't won't it's",
    "e-mail: someone@example.com, url http://a.b/c?d=e&f=g#h",
    "$3.50 + 20% = 4.20€ ~ £3",
    "12345678901234567890 3.14159 1,000,000",
    "`backtick` {braces} [brackets] <angle> |pipe| \\backslash^caret_under",
    "UPPER lower MiXeD",
    "é" * 101,
    "\u00ad soft hyphen \ufeff bom",
]


def real_sentences(per_dataset: int = 120) -> list[str]:
    out: list[str] = []
    for name in ["nlu_scenario", "sms_spam", "tweets_sentiment", "movie_snippets", "imdb",
                 "spam_assassin", "yahoo_answers", "bbc_news", "clinc150"]:
        path = DATASETS / name / "test.jsonl.gz"
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= per_dataset:
                    break
                out.append(json.loads(line)["text"])
    return out


# ---- tests --------------------------------------------------------------------------------------
def test_special_ids_and_vocab(tok: Tokenizer) -> None:
    assert tok.vocab_size == 8192
    assert tok.vocab[:5] == SPECIAL_TOKENS
    assert len(set(tok.vocab)) == 8192
    assert all(tok.id_to_token(i) == t for i, t in enumerate(tok.vocab))
    raw = json.loads(DEFAULT_TOKENIZER.read_text())
    assert raw["added_tokens"] == []  # see the tokenizer module docstring
    assert raw["model"]["continuing_subword_prefix"] == "##"
    assert raw["model"]["max_input_chars_per_word"] == 100


@pytest.mark.parametrize("text", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_match_reference(tok: Tokenizer, vocab: dict[str, int], text: str) -> None:
    assert tok.encode(text) == ref_encode(text, vocab)
    assert tok.encode(text.encode("utf-8")) == ref_encode(text, vocab)


def test_specific_rules(tok: Tokenizer) -> None:
    assert tok.encode("") == [CLS]
    assert tok.encode(" \t\r\n") == [CLS]
    assert tok.encode("x" * 101) == [CLS, 1]  # > 100 code points -> one [UNK]
    assert tok.encode("x" * 100) != [CLS, 1]
    assert tok.pieces("Hello, WORLD!") == ["hello", ",", "world", "!"]
    assert tok.pieces("[CLS]")[0] == "["  # literal text is never a special token
    # NBSP is not whitespace: one word; ASCII lower-casing only.
    assert len(tok.pieces("a\u00a0b")) == 1
    assert tok.pieces("É")[0] != tok.pieces("é")[0]


def test_truncation(tok: Tokenizer) -> None:
    text = "the cat sat on the mat " * 100
    full = tok.encode(text, max_len=10_000)
    assert len(full) > 256
    assert tok.encode(text) == full[:256]
    assert tok.encode(text, max_len=64) == full[:64]
    assert tok.encode(text, max_len=1) == [CLS]
    with pytest.raises(ValueError):
        tok.encode(text, max_len=0)
    assert tok.encode_batch([text, ""], max_len=7) == [full[:7], [CLS]]


@pytest.mark.parametrize(
    ("data", "at"),
    [
        (b"ok \xff", 3),  # bad lead byte
        (b"ab\xc3", 2),  # truncated sequence
        (b"ab\xc3(", 2),  # bad continuation
        (b"\xc0\xaf", 0),  # overlong '/'
        (b"x\xed\xa0\x80", 1),  # UTF-16 surrogate
        (b"xy\xf4\x90\x80\x80", 2),  # > U+10FFFF
    ],
)
def test_invalid_utf8_names_the_byte(tok: Tokenizer, data: bytes, at: int) -> None:
    with pytest.raises(TokenizerError, match=f"at byte {at}\\b"):
        tok.encode(data)
    assert issubclass(TokenizerError, ValueError)


def test_lone_surrogate_str_is_rejected(tok: Tokenizer) -> None:
    with pytest.raises(TokenizerError, match="code point 1"):
        tok.encode("a\ud800b")


def test_decode_round_trip(tok: Tokenizer) -> None:
    text = "hello world, this is an unbelievably simple test!"
    ids = tok.encode(text)
    assert tok.decode(ids) == "hello world , this is an unbelievably simple test !"
    # Round trip of ids through the decoded text (lower-case ASCII input is a fixed point).
    assert tok.encode(tok.decode(ids)) == ids


def test_save_and_reload(tok: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    tok.save(path)
    again = Tokenizer.from_file(path)
    assert again.vocab == tok.vocab
    assert again.encode("Save me, PLEASE 😀") == tok.encode("Save me, PLEASE 😀")


def test_no_torch_import() -> None:
    """The host runtime tokenizes without torch."""
    import subprocess

    code = ("import sys; import hil.quant.tokenizer as t; t.Tokenizer.from_file().encode('x');"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not DATASETS.is_dir(), reason=f"datasets not found at {DATASETS}")
def test_real_sentences_match_reference(tok: Tokenizer, vocab: dict[str, int]) -> None:
    texts = real_sentences()
    assert len(texts) > 900
    got = tok.encode_batch(texts, max_len=100_000)
    mismatches = [t for t, g in zip(texts, got, strict=True) if g != ref_encode(t, vocab, 100_000)]
    assert not mismatches, f"{len(mismatches)} differ, first: {mismatches[0][:200]!r}"
    unk_rate = sum(g.count(1) for g in got) / sum(len(g) for g in got)
    assert unk_rate < 0.01, f"[UNK] rate {unk_rate:.3%} on real text"
