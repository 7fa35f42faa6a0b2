"""The tokenizer vocabulary as blob tensors, laid out for the C tokenizer (firmware/src/tokenizer.c)

The device needs only one question answered fast and from flash: "which is the longest vocabulary
piece that starts here?". So the vocabulary is stored as two byte-sorted tables that the C code
narrows byte by byte with binary search, with no hash table, no trie to build and no RAM:

- `tok.cfg`     i32 [7]: vocab_size, unk id, cls id, pad id, max code points per word,
                number of word-initial entries (n_init), number of entries (n).
- `tok.bytes`   u8 [total]: entry texts concatenated, no separators. Entries [0, n_init) are
                word-initial pieces, [n_init, n) are continuation pieces with their "##" removed
                (saves 2 bytes per piece and the device never compares the prefix).
                Each table is sorted by its UTF-8 bytes (memcmp order, a prefix before longer).
- `tok.offsets` u16 [n + 1] when total < 65536 bytes, else u32: entry i is
                bytes[offsets[i]:offsets[i + 1]].
- `tok.ids`     u16 [n]: the vocabulary id of each entry.

Pieces no word can ever match are left out (they would only cost flash): the special tokens and
any piece holding an ASCII upper-case letter or whitespace (input is lower-cased and split on
whitespace first), ASCII punctuation other than a lone word-initial punctuation character (each
punctuation character is a word of its own), or nothing but "##". docs/model-blob.md has the
same description for C readers.
"""

from __future__ import annotations

import string

import numpy as np

MAX_CHARS_PER_WORD = 100
CONTINUING_PREFIX = "##"
UNK_ID, CLS_ID, PAD_ID = 1, 2, 0
_WHITESPACE = set(" \t\n\v\f\r")
_PUNCT = set(string.punctuation)
_UPPER = set(string.ascii_uppercase)

CFG_FIELDS = ("vocab_size", "unk", "cls", "pad", "max_chars_per_word", "n_init", "n_entries")


def reachable(piece: str, continuation: bool) -> bool:
    """Whether some input word can produce this piece under docs/tokenizer.md's rules."""
    if not piece or _UPPER.intersection(piece) or _WHITESPACE.intersection(piece):
        return False
    if _PUNCT.intersection(piece):
        return not continuation and len(piece) == 1
    return True


def vocab_tensors(vocab: list[str], unk: int = UNK_ID, cls: int = CLS_ID, pad: int = PAD_ID,
                  max_chars_per_word: int = MAX_CHARS_PER_WORD) -> dict[str, np.ndarray]:
    """Blob tensors for the C tokenizer from a vocabulary in id order (index = id)."""
    if not 0 < len(vocab) <= 65536:
        raise ValueError(f"vocabulary of {len(vocab)} tokens; ids must fit u16 (1..65536)")
    if len(set(vocab)) != len(vocab):
        dups = sorted({t for t in vocab if vocab.count(t) > 1})[:5]
        raise ValueError(f"vocabulary has duplicate tokens, e.g. {dups}")
    for name, i in (("unk", unk), ("cls", cls), ("pad", pad)):
        if not 0 <= i < len(vocab):
            raise ValueError(f"{name} id {i} is outside the vocabulary (size {len(vocab)})")
    if max_chars_per_word < 1:
        raise ValueError(f"max_chars_per_word must be >= 1, got {max_chars_per_word}")
    init: list[tuple[bytes, int]] = []
    cont: list[tuple[bytes, int]] = []
    for i, tok in enumerate(vocab):
        is_cont = tok.startswith(CONTINUING_PREFIX)
        piece = tok[len(CONTINUING_PREFIX):] if is_cont else tok
        if reachable(piece, is_cont):
            (cont if is_cont else init).append((piece.encode("utf-8"), i))
    entries = sorted(init) + sorted(cont)
    blob = b"".join(b for b, _ in entries)
    offsets = np.cumsum([0] + [len(b) for b, _ in entries], dtype=np.int64)
    off_dtype = np.uint16 if len(blob) < 65536 else np.uint32
    return {
        "tok.cfg": np.array([len(vocab), unk, cls, pad, max_chars_per_word, len(init),
                             len(entries)], dtype=np.int32),
        "tok.bytes": np.frombuffer(blob, dtype=np.uint8).copy(),
        "tok.offsets": offsets.astype(off_dtype),
        "tok.ids": np.array([i for _, i in entries], dtype=np.uint16),
    }


def vocab_size_bytes(tensors: dict[str, np.ndarray]) -> int:
    """Flash bytes the tokenizer tensors take (data only; each adds a 64-byte table entry)."""
    return sum(int(v.nbytes) for k, v in tensors.items() if k.startswith("tok."))
