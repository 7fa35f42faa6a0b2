"""The host tokenizer: a Hugging Face `tokenizers` WordPiece that follows docs/tokenizer.md exactly.

The rules are chosen so that a microcontroller can reproduce them without Unicode tables, so the
HF pipeline here is deliberately *not* BERT's: ASCII-only lower-casing (no Unicode Lowercase, no
accent stripping, no NFC), splitting on ASCII whitespace runs and isolating each ASCII punctuation
character, WordPiece with `##` continuations and a 100-code-point word limit, `[CLS]` + pieces and
no `[SEP]`. The C tokenizer (firmware/src/tokenizer.c) is checked id for id against this module.

This module must not import torch: `hil run` tokenizes on hosts without the [train] extra.

Special tokens live in the WordPiece vocabulary only (ids 0..4), never in the HF "added tokens"
table: otherwise HF would match the literal text "[CLS]" in a user's sentence as the special
token, which the device (and the rules) do not do.
"""

from __future__ import annotations

import gzip
import string
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Regex, decoders, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

from hil.paths import DEFAULT_TOKENIZER as _DEFAULT_TOKENIZER

PAD, UNK, CLS, MASK, SEP = 0, 1, 2, 3, 4
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[MASK]", "[SEP]"]  # index = id
DEFAULT_MAX_LEN = 256
MAX_INPUT_CHARS_PER_WORD = 100
CONTINUING_PREFIX = "##"
ASCII_WHITESPACE = " \t\n\v\f\r"
ASCII_PUNCTUATION = string.punctuation  # !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~

# Oniguruma patterns with explicit code points, so no regex dialect can widen them to Unicode.
_WHITESPACE_RE = r"[\x20\x09\x0A\x0B\x0C\x0D]+"
_PUNCT_RE = r"[\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E]"

#: Default location of the shipped tokenizer (package data).
DEFAULT_TOKENIZER = _DEFAULT_TOKENIZER


class TokenizerError(ValueError):
    """The input is not valid UTF-8 (or not encodable as UTF-8); nothing is replaced silently."""


def build_pipeline(vocab: dict[str, int] | None = None) -> HFTokenizer:
    """An HF tokenizer wired to the rules, with `vocab` (or an empty WordPiece for training)."""
    opts = dict(unk_token="[UNK]", max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
                continuing_subword_prefix=CONTINUING_PREFIX)
    model = WordPiece(vocab, **opts) if vocab is not None else WordPiece(**opts)
    tok = HFTokenizer(model)
    # Rule 2: only A-Z -> a-z. Unicode Lowercase would also fold e.g. 'É' and 'Σ', which the
    # device cannot do without tables.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(c, c.lower()) for c in string.ascii_uppercase]
    )
    # Rule 3: ASCII whitespace runs are dropped; each ASCII punctuation char is its own word.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_WHITESPACE_RE), behavior="removed"),
        pre_tokenizers.Split(Regex(_PUNCT_RE), behavior="isolated"),
    ])
    tok.decoder = decoders.WordPiece(prefix=CONTINUING_PREFIX, cleanup=False)
    return tok


def _read_lines(paths: Iterable[str | Path]) -> Iterator[str]:
    for path in paths:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    yield line


def train_tokenizer(corpus: Iterable[str | Path], vocab_size: int = 8192,
                    limit_alphabet: int = 1000, min_frequency: int = 2) -> Tokenizer:
    """Train a WordPiece vocabulary on text files (one document a line, .gz allowed).

    `limit_alphabet` keeps rare characters (CJK, emoji seen once) from eating the 8192 slots;
    a word with a character outside the alphabet becomes [UNK], as the rules say.
    """
    hf = build_pipeline()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        limit_alphabet=limit_alphabet,
        continuing_subword_prefix=CONTINUING_PREFIX,
        show_progress=False,
    )
    hf.train_from_iterator(_read_lines(corpus), trainer=trainer)
    vocab = hf.get_vocab()
    for i, tok in enumerate(SPECIAL_TOKENS):
        if vocab.get(tok) != i:
            raise RuntimeError(f"special token {tok} got id {vocab.get(tok)}, expected {i}")
    # Rebuild without HF's added-tokens table (see the module docstring).
    return Tokenizer(build_pipeline(vocab))


def _check_utf8(text: str | bytes) -> str:
    """Strict UTF-8: bytes are decoded, str must be encodable (no lone surrogates)."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        try:
            return data.decode("utf-8", errors="strict")
        except UnicodeDecodeError as e:
            bad = data[e.start:e.end].hex(" ")
            raise TokenizerError(
                f"invalid UTF-8 at byte {e.start} (bytes {bad}): {e.reason}"
            ) from None
    if not isinstance(text, str):
        raise TypeError(f"expected str or bytes, got {type(text).__name__}")
    try:
        text.encode("utf-8", errors="strict")
    except UnicodeEncodeError as e:
        raise TokenizerError(
            f"text is not valid Unicode at code point {e.start} "
            f"(U+{ord(text[e.start]):04X}: {e.reason})"
        ) from None
    return text


class Tokenizer:
    """`[CLS]` + WordPiece ids under the rules of docs/tokenizer.md; see the module docstring."""

    def __init__(self, hf: HFTokenizer) -> None:
        self.hf = hf
        vocab = hf.get_vocab(with_added_tokens=False)
        self._vocab: list[str] = [""] * len(vocab)
        for tok, i in vocab.items():
            self._vocab[i] = tok
        if self._vocab[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(f"tokenizer's first ids are {self._vocab[:5]}, not {SPECIAL_TOKENS}")
        if "" in self._vocab:
            raise ValueError("tokenizer vocabulary has holes in its ids")

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> Tokenizer:
        """Load a tokenizer.json; by default the shipped one (hil/models/tokenizer.json, or the
        identical copy beside the default model when a wheel left the top-level file out)."""
        if path is None:
            path = DEFAULT_TOKENIZER
            if not path.exists():
                path = DEFAULT_TOKENIZER.parent / "nlu_scenario" / "tokenizer.json"
        return cls(HFTokenizer.from_file(str(path)))

    def save(self, path: str | Path) -> None:
        """Write tokenizer.json (HF format, readable by `tokenizers` and `from_file`)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.hf.save(str(path), pretty=True)

    @property
    def vocab(self) -> list[str]:
        """Tokens in id order (index = id); continuation pieces start with '##'."""
        return list(self._vocab)

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def id_to_token(self, i: int) -> str:
        return self._vocab[i]

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def pieces(self, text: str | bytes) -> list[str]:
        """Word pieces (strings) without [CLS] and without truncation; for inspection."""
        return self.hf.encode(_check_utf8(text), add_special_tokens=False).tokens

    def encode(self, text: str | bytes, max_len: int | None = None) -> list[int]:
        """[CLS] + word-piece ids, truncated to `max_len` (default 256) including [CLS].

        Bytes are decoded as strict UTF-8; invalid input raises TokenizerError naming the byte.
        """
        max_len = DEFAULT_MAX_LEN if max_len is None else max_len
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1 (room for [CLS]), got {max_len}")
        ids = self.hf.encode(_check_utf8(text), add_special_tokens=False).ids
        return [CLS, *ids[: max_len - 1]]

    def encode_batch(self, texts: list[str | bytes], max_len: int | None = None
                     ) -> list[list[int]]:
        """`encode` for many texts at once (HF runs them in parallel)."""
        max_len = DEFAULT_MAX_LEN if max_len is None else max_len
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1 (room for [CLS]), got {max_len}")
        encs = self.hf.encode_batch([_check_utf8(t) for t in texts], add_special_tokens=False)
        return [[CLS, *e.ids[: max_len - 1]] for e in encs]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Join pieces back into text (lower-cased; spaces around punctuation are not restored)."""
        toks = [self._vocab[i] for i in ids if not (skip_special and i < len(SPECIAL_TOKENS)
                                                    and i != UNK)]
        if not toks:
            return ""
        return self.hf.decoder.decode(toks)


def main(argv: list[str] | None = None) -> int:
    """`python -m hil.quant.tokenizer CORPUS... -o tokenizer.json`: train the shipped vocabulary."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("corpus", nargs="+", help="text files, one document a line (.gz allowed)")
    p.add_argument("-o", "--out", default=str(DEFAULT_TOKENIZER))
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--limit-alphabet", type=int, default=1000)
    a = p.parse_args(argv)
    tok = train_tokenizer(a.corpus, a.vocab_size, a.limit_alphabet)
    tok.save(a.out)
    print(f"wrote {a.out}: {tok.vocab_size} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
