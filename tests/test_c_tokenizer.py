"""The C tokenizer (firmware/src/tokenizer.c) against the host tokenizer (hil.quant.tokenizer).

Contract 1 of the design: the device's ids equal the host's, id for id, on real sentences and
on every nasty input. The C side is one ASan/UBSan process fed a length-prefixed batch on stdin
(firmware/tests/tokenizer_tool.c), so thousands of texts cost about a second. Exhaustive runs
(every test split of every dataset) are marked slow.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from hil.quant import blob as B
from hil.quant import vocab as V

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build" / "host-tests"
# The one datasets root: $HIL_DATA_DIR, ../shared/datasets beside a checkout, or what
# `hil data fetch` wrote (hil.paths).
from hil.paths import datasets_dir  # noqa: E402

DATASETS = datasets_dir()
CFLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-Wshadow",
          "-Wconversion", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
ERR_BAD_UTF8, ERR_ARG, ERR_TENSOR = -6, -11, -5

tokmod = pytest.importorskip("hil.quant.tokenizer", reason="host tokenizer (hil.model) missing")


def build_tool() -> Path:
    """Compile tokenizer_tool with sanitizers; rebuilt only when a source is newer."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler (gcc) on PATH")
    sources = [FW / "src" / "blob.c", FW / "src" / "tokenizer.c", FW / "tests" / "tokenizer_tool.c"]
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / "tokenizer_tool"
    deps = [*sources, *(FW / "include").glob("*.h")]
    if not out.exists() or any(p.stat().st_mtime > out.stat().st_mtime for p in deps):
        cmd = [cc, *CFLAGS, f"-I{FW / 'include'}", *map(str, sources), "-o", str(out)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


class CTokenizer:
    """Runs tokenizer_tool over a blob file; one process per batch."""

    def __init__(self, tool: Path, blob_path: Path) -> None:
        self.tool, self.blob_path = tool, blob_path

    def run(self, texts: Iterable[bytes], max_ids: int | list[int] = 256
            ) -> tuple[int, list[tuple[int, list[int]]]]:
        texts = list(texts)
        maxes = max_ids if isinstance(max_ids, list) else [max_ids] * len(texts)
        stdin = b"".join(struct.pack("<II", m, len(t)) + t for t, m in zip(texts, maxes,
                                                                              strict=True))
        res = subprocess.run([str(self.tool), str(self.blob_path)], input=stdin,
                             capture_output=True, timeout=600, env={**os.environ, **SAN_ENV})
        assert res.returncode == 0, (f"tokenizer_tool exit {res.returncode}\n"
                                     f"{res.stderr.decode(errors='replace')[-4000:]}")
        out, pos = res.stdout, 4
        load = struct.unpack_from("<i", out)[0]
        results = []
        while pos < len(out):
            status, n = struct.unpack_from("<iI", out, pos)
            pos += 8
            results.append((status, list(struct.unpack_from(f"<{n}H", out, pos))))
            pos += 2 * n
        assert load != 0 or len(results) == len(texts)
        return load, results

    def ids(self, texts: Iterable[bytes], max_ids: int | list[int] = 256
            ) -> list[tuple[int, list[int]]]:
        load, results = self.run(texts, max_ids)
        assert load == 0, f"vocab load failed with {load}"
        return results


def write_vocab_blob(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    path.write_bytes(B.write_blob(tensors))
    return path


@pytest.fixture(scope="module")
def host():  # -> hil.quant.tokenizer.Tokenizer
    if not tokmod.DEFAULT_TOKENIZER.exists():
        pytest.skip(f"shipped tokenizer {tokmod.DEFAULT_TOKENIZER} missing")
    return tokmod.Tokenizer.from_file()


@pytest.fixture(scope="module")
def ctok(host, tmp_path_factory) -> CTokenizer:
    path = tmp_path_factory.mktemp("vocab") / "vocab.bin"
    return CTokenizer(build_tool(), write_vocab_blob(path, V.vocab_tensors(host.vocab)))


def host_ids(host, text: bytes, max_len: int) -> tuple[int, list[int]]:
    """(status, ids) as the C tool reports them: BAD_UTF8 when the host raises."""
    try:
        return 0, host.encode(text, max_len=max_len)
    except tokmod.TokenizerError:
        return ERR_BAD_UTF8, []


def assert_parity(host, ctok: CTokenizer, texts: list[bytes], max_ids: int = 256) -> int:
    """Every text gives the same status and ids on both sides; returns the count checked."""
    got = ctok.ids(texts, max_ids)
    bad = []
    for text, c in zip(texts, got, strict=True):
        want = host_ids(host, text, max_ids)
        if c != want:
            bad.append((text[:120], want, c))
    assert not bad, (f"{len(bad)}/{len(texts)} texts differ, first: text={bad[0][0]!r}\n"
                     f"host={bad[0][1]}\nC   ={bad[0][2]}")
    return len(texts)


# ---- edge cases -------------------------------------------------------------------------------

EDGE_TEXTS: list[str] = [
    "", " ", " \t\n\v\f\r ", "a", "A", "Hello, World!", "HELLO world", "don't stop-me now...",
    "!!!???", "a.b.c", "##", "#hashtag", "[CLS] [UNK] [PAD]", "[cls]", "e-mail: x@y.com",
    "café naïve résumé Ångström ÉCOLE", "Straße", "İstanbul", "ΣΊΣΥΦΟΣ σίσυφος",
    "日本語のテキスト", "中文字符测试", "한국어", "emoji 😀👍🏽 👨‍👩‍👧 🇫🇷", "😀😀😀",
    "nbsp\u00a0here", "thin\u2009space", "ideographic\u3000space", "zero\u200bwidth",
    "line\u2028sep", "soft\u00adhyphen", "ctrl\x01\x02\x1f\x7fchars", "nul\x00byte", "\x00",
    "\x00\x00 \x00", "tab\tsep\nnew\rline", "mixed123abc 42 3.14 1,000", "ﬁ ligature",
    "combining e\u0301 accent", "rtl עברית العربية", "math ∑∫√∞ ≠", "a" * 100, "a" * 101,
    "é" * 100, "é" * 101, "😀" * 100, "😀" * 101, "ab" * 5000, "x" * 10000 + " tail",
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "UNBELIEVABLEness", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "qzxqzxqzx", "\ufeffbom", "\U0010ffff",
    "\ue000 private", "trailing space   ", "   leading", "\u0085 nel", "word\u00a0" * 300,
]


def test_edge_cases(host, ctok: CTokenizer) -> None:
    assert_parity(host, ctok, [t.encode("utf-8") for t in EDGE_TEXTS])


@pytest.mark.parametrize("max_ids", [1, 2, 3, 5, 17, 256, 100000])
def test_truncation(host, ctok: CTokenizer, max_ids: int) -> None:
    """Truncation at max_ids, including inside a word that later turns out to be [UNK]."""
    texts = [t.encode() for t in EDGE_TEXTS] + [
        b"unbelievable " * 50, ("word " * 400).encode(), "qzx😀qzx abc".encode(),
        ("a" * 99 + "😀 " + "b" * 50).encode(),
    ]
    assert_parity(host, ctok, texts, max_ids)


def test_word_over_limit_is_one_unk(host, ctok: CTokenizer) -> None:
    got = ctok.ids([("é" * 101).encode(), ("é" * 101 + " " + "é" * 100).encode()])
    assert got[0] == (0, [tokmod.CLS, tokmod.UNK])
    assert got[1][1][:2] == [tokmod.CLS, tokmod.UNK] and got[1][1][2] != tokmod.UNK


INVALID_UTF8 = [
    b"\x80", b"\xbf", b"a\x80b", b"\xc0\xaf", b"\xc1\xbf", b"\xc2", b"\xc2a", b"\xe0\x80\xaf",
    b"\xe0\x9f\xbf", b"\xe1\x80", b"\xe1\x80a", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80", b"\xfe", b"\xff", b"\xf0\x9f\x98",
    b"ok text then \xe2\x82", b"\xe2\x82\xac\xe2\x82", b"valid " * 100 + b"\xff",
    b"\xc3\xa9\xc3", b"\xef\xbb", b"\xf4\x8f\xbf", "é".encode("latin-1"),
]


def test_invalid_utf8(host, ctok: CTokenizer) -> None:
    for text in INVALID_UTF8:
        with pytest.raises(tokmod.TokenizerError):
            host.encode(text)
    got = ctok.ids(INVALID_UTF8)
    assert all(c == (ERR_BAD_UTF8, []) for c in got), got


def test_utf8_validation_all_short_sequences(host, ctok: CTokenizer) -> None:
    """Every 1- and 2-byte input, and seeded samples of 3- and 4-byte ones: C accepts exactly
    what Python's strict decoder accepts (and then tokenizes them alike)."""
    rng = random.Random(3)
    texts = [bytes([a]) for a in range(256)]
    texts += [bytes([a, b]) for a in range(256) for b in range(256)]
    leads = list(range(0xC0, 0x100))
    texts += [bytes([rng.choice(leads), rng.randrange(256), rng.randrange(256)])
              for _ in range(20000)]
    texts += [bytes([rng.choice(leads), rng.randrange(0x80, 0xC0), rng.randrange(0x80, 0xC0),
                     rng.randrange(256)]) for _ in range(20000)]
    assert_parity(host, ctok, texts, 8)


def random_texts(n: int, seed: int) -> list[bytes]:
    """Texts stitched from pieces that stress the rules (case, punctuation, Unicode, controls)."""
    rng = random.Random(seed)
    pieces = ["the", "The", "UN", "believ", "able", "ing", "##", "#", "'", "-", ".", "!", "?",
              " ", "  ", "\t", "\n", "\r\n", "\u00a0", "é", "É", "ñ", "ß", "日本", "😀", "👍🏽",
              "\x00", "\x01", "\x7f", "\u200b", "123", "4", "qzx", "a" * 60, "é" * 30, "x",
              "ﬁ", "\u0301", "don", "t", "http", "://", "www", "com", "$", "%", "@", "_"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))).encode()
            for _ in range(n)]


def test_random_texts(host, ctok: CTokenizer) -> None:
    assert_parity(host, ctok, random_texts(3000, 7))
    assert_parity(host, ctok, random_texts(500, 8), max_ids=9)


# ---- real sentences ---------------------------------------------------------------------------

def dataset_texts(name: str, split: str = "test", limit: int | None = None) -> list[bytes]:
    path = DATASETS / name / f"{split}.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} not found (no datasets here: `hil data fetch nlu_scenario`)")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"].encode("utf-8"))
            if limit is not None and len(out) >= limit:
                break
    return out


@pytest.mark.parametrize("name, limit", [
    ("nlu_scenario", None), ("sms_spam", None), ("imdb", 1500), ("tweets_sentiment", 500),
    ("spam_assassin", 300), ("newsgroups20", 300), ("banking77", 300), ("yahoo_answers", 300),
])
def test_dataset_parity(host, ctok: CTokenizer, name: str, limit: int | None) -> None:
    texts = dataset_texts(name, limit=limit)
    assert_parity(host, ctok, texts)
    assert_parity(host, ctok, texts, max_ids=1 << 16)  # untruncated: every piece of every text


SLOW_DATASETS = ["imdb", "nlu_scenario", "hwu64", "banking77", "clinc150", "sms_spam",
                 "movie_snippets", "rotten_tomatoes", "bbc_news", "yahoo_answers", "newsgroups20",
                 "spam_assassin", "tweets_sentiment"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_DATASETS)
def test_dataset_parity_all(host, ctok: CTokenizer, name: str) -> None:
    """Every text of every test split, untruncated."""
    assert_parity(host, ctok, dataset_texts(name), max_ids=1 << 16)


# ---- the vocabulary tensors ---------------------------------------------------------------------

def test_vocab_tensors_layout(host) -> None:
    t = V.vocab_tensors(host.vocab)
    cfg = dict(zip(V.CFG_FIELDS, t["tok.cfg"].tolist(), strict=True))
    assert cfg["vocab_size"] == len(host.vocab) and cfg["unk"] == tokmod.UNK
    assert cfg["cls"] == tokmod.CLS and cfg["pad"] == tokmod.PAD
    assert cfg["max_chars_per_word"] == tokmod.MAX_INPUT_CHARS_PER_WORD
    n, n_init = cfg["n_entries"], cfg["n_init"]
    off, raw, ids = t["tok.offsets"], t["tok.bytes"].tobytes(), t["tok.ids"]
    assert off.shape == (n + 1,) and ids.shape == (n,) and off[-1] == len(raw)
    entries = [raw[off[i]:off[i + 1]] for i in range(n)]
    assert entries[:n_init] == sorted(set(entries[:n_init]))
    assert entries[n_init:] == sorted(set(entries[n_init:]))
    for i, e in enumerate(entries):
        tok = host.vocab[ids[i]]
        assert tok == (e.decode() if i < n_init else "##" + e.decode())
    dropped = set(range(len(host.vocab))) - set(ids.tolist())
    assert dropped >= {0, 1, 2, 3, 4}  # [PAD].. [SEP] can never be matched in text


def test_vocab_reachability() -> None:
    assert V.reachable("abc", False) and V.reachable("é", True) and V.reachable("!", False)
    assert not V.reachable("!", True) and not V.reachable("a!", False)
    assert not V.reachable("Ab", False) and not V.reachable("", True)
    assert not V.reachable("a b", False)


def test_vocab_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        V.vocab_tensors(["a", "b", "a"])
    with pytest.raises(ValueError, match="outside"):
        V.vocab_tensors(["a"], unk=5)
    with pytest.raises(ValueError, match="u16"):
        V.vocab_tensors([])


def test_u32_offsets(host, ctok: CTokenizer, tmp_path: Path) -> None:
    """Big vocabularies (> 64 KiB of text) use u32 offsets; C reads both."""
    t = V.vocab_tensors(host.vocab)
    t["tok.offsets"] = t["tok.offsets"].astype(np.uint32)
    c32 = CTokenizer(ctok.tool, write_vocab_blob(tmp_path / "v32.bin", t))
    texts = random_texts(300, 11) + [x.encode() for x in EDGE_TEXTS]
    assert c32.ids(texts) == ctok.ids(texts)


def test_small_custom_vocab(tmp_path: Path) -> None:
    """Greedy longest match on a vocabulary built to need it (and one with no pieces at all)."""
    vocab = [*tokmod.SPECIAL_TOKENS, "un", "una", "unaff", "##aff", "##able", "##a", "##b", "a",
             "b", "##ble", "ab", "##l", "##e", ".", "é", "##é", "日", "##本"]
    host = tokmod.Tokenizer(tokmod.build_pipeline({t: i for i, t in enumerate(vocab)}))
    c = CTokenizer(build_tool(), write_vocab_blob(tmp_path / "v.bin", V.vocab_tensors(vocab)))
    texts = [b"unaffable", b"UNAFFABLE.", b"unable", b"una", b"unab", b"ababab", b"ba",
             "éé é日本 日日".encode(), b"c", b"abc", b"un.aff", "aé".encode()]
    assert_parity(host, c, texts + random_texts(300, 5))
    only_special = V.vocab_tensors(tokmod.SPECIAL_TOKENS)
    assert only_special["tok.ids"].size == 0
    c0 = CTokenizer(c.tool, write_vocab_blob(tmp_path / "v0.bin", only_special))
    assert c0.ids([b"hello world", b""]) == [(0, [2, 1, 1]), (0, [2])]


def bad_vocabs(host) -> list[tuple[str, dict[str, np.ndarray]]]:
    good = V.vocab_tensors(host.vocab)

    def edit(name: str, fn) -> dict[str, np.ndarray]:
        t = {k: v.copy() for k, v in good.items()}
        t[name] = fn(t[name])
        return t

    def at(i: int, value: int):
        def f(a: np.ndarray) -> np.ndarray:
            a[i] = value
            return a
        return f

    n_init = int(good["tok.cfg"][5])
    swapped = edit("tok.offsets", lambda a: a)
    raw = bytearray(swapped["tok.bytes"].tobytes())
    o = swapped["tok.offsets"]
    first = raw[o[10]:o[11]]
    raw[o[10]:o[11]] = b"\xff" * len(first)  # entry 10 now sorts after entry 11
    swapped["tok.bytes"] = np.frombuffer(bytes(raw), dtype=np.uint8)
    missing = {k: v for k, v in good.items() if k != "tok.ids"}
    return [
        ("missing tok.ids", missing),
        ("cfg too short", edit("tok.cfg", lambda a: a[:6])),
        ("vocab size 0", edit("tok.cfg", at(0, 0))),
        ("vocab size > 65536", edit("tok.cfg", at(0, 70000))),
        ("unk out of range", edit("tok.cfg", at(1, 8192))),
        ("cls negative", edit("tok.cfg", at(2, -1))),
        ("max chars 0", edit("tok.cfg", at(4, 0))),
        ("n_init > n", edit("tok.cfg", at(5, 100000))),
        ("n vs ids shape", edit("tok.cfg", at(6, 5))),
        ("id out of range", edit("tok.ids", at(3, 9000))),
        ("offset[0] != 0", edit("tok.offsets", at(0, 1))),
        ("empty entry", edit("tok.offsets", at(5, int(good["tok.offsets"][4])))),
        ("offsets decrease", edit("tok.offsets", at(5, 60000))),
        ("offsets past bytes", edit("tok.offsets", at(-1, 60000))),
        ("offsets wrong dtype", edit("tok.offsets", lambda a: a.astype(np.int32))),
        ("bytes 2-D", edit("tok.bytes", lambda a: a.reshape(1, -1))),
        ("unsorted init table", swapped),
        ("unchanged (control) is fine", edit("tok.cfg", at(5, n_init))),
    ]


def test_bad_vocab_is_refused(host, ctok: CTokenizer, tmp_path: Path) -> None:
    for i, (what, tensors) in enumerate(bad_vocabs(host)):
        load, _ = CTokenizer(ctok.tool, write_vocab_blob(tmp_path / f"b{i}.bin", tensors)).run([])
        want = 0 if what.endswith("is fine") else ERR_TENSOR
        assert load == want, f"{what}: ebq_vocab_load returned {load}"


def shipped_blobs() -> list[Path]:
    """Model blobs shipped in the package, plus $EBQ_TEST_BLOB (for checking a fresh build)."""
    paths = sorted((ROOT / "hil" / "models").glob("*/model.bin"))
    if os.environ.get("EBQ_TEST_BLOB"):
        paths.append(Path(os.environ["EBQ_TEST_BLOB"]))
    return paths


@pytest.mark.parametrize("path", shipped_blobs() or [None], ids=lambda p: p and p.parent.name)
def test_shipped_blob_vocab(host, path: Path | None) -> None:
    """The vocabulary inside a real model blob tokenizes like that model's tokenizer.json."""
    if path is None:
        pytest.skip("no shipped hil/models/*/model.bin yet (hil quantize --all writes them)")
    own = path.parent / "tokenizer.json"  # a shipped model dir carries its tokenizer
    shipped = path.parent.parent == ROOT / "hil" / "models"
    model_host = tokmod.Tokenizer.from_file(own) if shipped and own.exists() else host
    c = CTokenizer(build_tool(), path)
    texts = dataset_texts("nlu_scenario") + random_texts(300, 13)
    assert_parity(model_host, c, texts)
