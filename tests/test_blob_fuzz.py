"""The libFuzzer entries (firmware/tests/fuzz_blob.c, fuzz_tokenizer.c) run as plain sanitized
programs over seeded random inputs, so every test run exercises them even without libFuzzer; and
the blob and tokenizer C sources cross-compiled for Cortex-M4: warnings-free, no float, small stack.

A real fuzzing session (clang + libclang-rt) is described in the entries' header comments.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from hil.quant import blob as B
from hil.quant import vocab as V

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build" / "host-tests"
SOURCES = [FW / "src" / "blob.c", FW / "src" / "tokenizer.c"]
CFLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-DEBQ_FUZZ_STANDALONE"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[MASK]", "[SEP]"]


def build_fuzz(name: str) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler (gcc) on PATH")
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / f"{name}_standalone"
    src = FW / "tests" / f"{name}.c"
    deps = [*SOURCES, src, FW / "tests" / "blob_fuzz_main.h", *(FW / "include").glob("*.h")]
    if not out.exists() or any(p.stat().st_mtime > out.stat().st_mtime for p in deps):
        cmd = [cc, *CFLAGS, f"-I{FW / 'include'}", *map(str, SOURCES), str(src), "-o", str(out)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


def run_fuzz(exe: Path, inputs: list[bytes], env: dict[str, str] | None = None) -> None:
    stdin = b"".join(struct.pack("<I", len(x)) + x for x in inputs)
    res = subprocess.run([str(exe)], input=stdin, capture_output=True, timeout=300,
                         env={**os.environ, **(env or {})})
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-4000:]
    assert res.stdout.decode().strip() == f"fuzz ok {len(inputs)}"


def mutate(rng: random.Random, data: bytes, restamp: bool) -> bytes:
    d = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(d))
        d[pos] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256), d[pos] ^ 1])
    if rng.random() < 0.2:
        d = d[:rng.randrange(len(d) + 1)]
    if restamp and len(d) >= 16:
        total = min(struct.unpack_from("<I", d, 8)[0], len(d))
        struct.pack_into("<I", d, 12, zlib.crc32(d[16:total]))
    return bytes(d)


def vocab_blob() -> bytes:
    vocab = [*SPECIAL, "a", "ab", "b", "un", "##a", "##b", "##ble", "é", "##é", ".", "日", "##本"]
    return B.write_blob(V.vocab_tensors(vocab), meta={"m": 1})


def test_fuzz_blob_entry() -> None:
    """Mutated blobs (table and tok.* tensors, CRC re-stamped or not) never crash."""
    exe = build_fuzz("fuzz_blob")
    rng = random.Random(5)
    seeds = [vocab_blob(), B.write_blob({"cfg.dims": np.arange(4, dtype=np.int32),
                                         "w": np.ones((2, 3), np.int8)})]
    inputs = list(seeds)
    inputs += [mutate(rng, rng.choice(seeds), rng.random() < 0.8) for _ in range(3000)]
    run_fuzz(exe, inputs)


def test_fuzz_tokenizer_entry(tmp_path: Path) -> None:
    """Random byte strings (mostly valid UTF-8) hold the tokenizer's invariants, built-in
    vocabulary and a real blob vocabulary."""
    exe = build_fuzz("fuzz_tokenizer")
    rng = random.Random(9)
    alphabet = ["a", "b", "un", "ble", "A", "B", " ", "\t", ".", "#", "é", "É", "日", "本", "😀",
                "\x00", "\u00a0", "x" * 50]
    inputs = [b"", b"\x00", b"\xff"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))).encode()
        if rng.random() < 0.2:
            text = mutate(rng, text or b"a", False)
        inputs.append(bytes([rng.randrange(256)]) + text)
    run_fuzz(exe, inputs)
    path = tmp_path / "vocab.bin"
    path.write_bytes(vocab_blob())
    run_fuzz(exe, inputs, {"EBQ_FUZZ_VOCAB": str(path)})


ARM_FLAGS = ["-std=c11", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-Os",
             "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wshadow", "-fstack-usage"]


def test_cortex_m4_build(tmp_path: Path) -> None:
    """Cross-compiles cleanly, pulls in no float helpers and no libc beyond memset/memcpy, and
    every function's own stack frame stays small (no hidden buffers)."""
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        pytest.skip("arm-none-eabi-gcc not on PATH")
    undefined: set[str] = set()
    frames: dict[str, int] = {}
    for src in SOURCES:
        obj = tmp_path / (src.stem + ".o")
        res = subprocess.run([cc, *ARM_FLAGS, f"-I{FW / 'include'}", "-c", str(src), "-o",
                              str(obj)], capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        nm = subprocess.run([cc.replace("gcc", "nm"), "-u", str(obj)], capture_output=True,
                            text=True, check=True)
        undefined |= {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
        for line in obj.with_suffix(".su").read_text().splitlines():
            m = re.match(r".*:(\w+(?:\.\w+)?)\t(\d+)\t(\w+)", line)
            assert m and m[3] == "static", line
            frames[m[1]] = int(m[2])
    ours = {"ebq_blob_get", "ebq_crc32", "ebq_blob_parse", "ebq_blob_tensor"}
    assert undefined - ours <= {"memset", "memcpy"}, undefined
    assert not any(re.match(r"__aeabi_[fd]|__(add|mul|div)[sd]f", s) for s in undefined)
    assert max(frames.values()) <= 256, frames
