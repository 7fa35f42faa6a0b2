"""Model blob: the Python writer/reader (hil.quant.blob) against the C reader (firmware/src/blob.c).

Both readers must agree on every tensor of a good blob and on the status code of every bad one,
because the host decides what it flashes from Python's verdict and the device from C's. The C
side runs as one ASan/UBSan process fed many blobs over stdin (see firmware/tests/blob_tool.c).
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

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build" / "host-tests"
CFLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-Wshadow",
          "-Wconversion", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
SAN_ENV = {"ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1", "UBSAN_OPTIONS":
           "print_stacktrace=1:halt_on_error=1"}


def build_c(name: str, sources: list[Path], extra: list[str] | None = None) -> Path:
    """Compile a host test program with sanitizers; rebuilt only when a source is newer."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler (gcc) on PATH")
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / name
    deps = [*sources, *(FW / "include").glob("*.h")]
    if not out.exists() or any(p.stat().st_mtime > out.stat().st_mtime for p in deps):
        cmd = [cc, *CFLAGS, *(extra or []), f"-I{FW / 'include'}", *map(str, sources),
               "-o", str(out)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


@pytest.fixture(scope="module")
def blob_tool() -> Path:
    return build_c("blob_tool", [FW / "src" / "blob.c", FW / "tests" / "blob_tool.c"])


def run_c(tool: Path, blobs: list[bytes], *args: str) -> list[dict]:
    """Feed blobs to blob_tool in one process; one dict per blob (status, id, tensors)."""
    stdin = b"".join(struct.pack("<I", len(b)) + b for b in blobs)
    res = subprocess.run([str(tool), *args], input=stdin, capture_output=True, timeout=120,
                         env={**os.environ, **SAN_ENV})
    assert res.returncode == 0, f"blob_tool exit {res.returncode}\n{res.stderr.decode()[-3000:]}"
    out: list[dict] = []
    for line in res.stdout.decode().splitlines():
        f = line.split(" ")
        if f[0] == "B":
            out.append({"status": int(f[1]), "model_id": int(f[2]), "n": int(f[3]),
                        "len": int(f[4]), "tensors": {}})
        elif f[0] == "T":
            out[-1]["tensors"][f[1]] = {
                "dtype": int(f[2]), "ndim": int(f[3]), "shape4": [int(x) for x in f[4:8]],
                "offset": int(f[8]), "nbytes": int(f[9]), "get": int(f[10]),
                "bytes": b"" if f[11] == "-" else bytes.fromhex(f[11])}
    assert len(out) == len(blobs), res.stderr.decode()[-3000:]
    return out


def py_status(data: bytes) -> int:
    try:
        B.read_blob(data)
    except B.BlobError as e:
        return e.code
    return 0


def sample_tensors() -> dict[str, np.ndarray]:
    """Every dtype, scalar to 4-D, an empty tensor and a non-contiguous view."""
    rng = np.random.default_rng(0)
    return {
        "cfg.dims": np.array([2, 64, 128, 8192], dtype=np.int32),
        "cfg.scalar": np.int32(-7),
        "w.i8": rng.integers(-128, 128, (3, 5), dtype=np.int8),
        "w.u8": rng.integers(0, 256, (2, 3, 4), dtype=np.uint8),
        "w.i16": rng.integers(-30000, 30000, (7,), dtype=np.int16),
        "w.u16": rng.integers(0, 65535, (1, 2, 3, 2), dtype=np.uint16),
        "w.u32": np.array([0, 1, 0xFFFFFFFF], dtype=np.uint32),
        "w.empty": np.zeros((0, 4), dtype=np.int8),
        "w.strided": np.arange(24, dtype=np.int32).reshape(4, 6)[:, ::2],
    }


META = {"model": "test", "labels": ["a", "b"], "quant": {"bits": 8}, "source_sha256": "00"}


def small_blob() -> bytes:
    return B.write_blob({"cfg.dims": np.array([1, 2, 3], dtype=np.int32),
                         "w": np.array([[1, -2], [3, -4]], dtype=np.int8)}, meta={"m": 1})


def recrc(data: bytes | bytearray) -> bytes:
    """Fix the header CRC after editing the payload, so the edit reaches the table checks."""
    d = bytearray(data)
    total = struct.unpack_from("<I", d, 8)[0]
    struct.pack_into("<I", d, 12, zlib.crc32(d[16:total]))
    return bytes(d)


def test_status_codes_match_ebq_h() -> None:
    text = (FW / "include" / "ebq.h").read_text()
    codes = {m[0]: int(m[1]) for m in re.findall(r"(EBQ_ERR_BLOB_\w+)\s*=\s*(-?\d+)", text)}
    assert codes == {"EBQ_ERR_BLOB_TRUNCATED": B.ERR_TRUNCATED, "EBQ_ERR_BLOB_MAGIC": B.ERR_MAGIC,
                     "EBQ_ERR_BLOB_VERSION": B.ERR_VERSION, "EBQ_ERR_BLOB_CRC": B.ERR_CRC,
                     "EBQ_ERR_BLOB_TENSOR": B.ERR_TENSOR}


def test_python_roundtrip() -> None:
    tensors = sample_tensors()
    data = B.write_blob(tensors, meta=META)
    blob = B.read_blob(data)
    assert list(blob.tensors) == [*tensors, "meta.json"]
    for name, arr in tensors.items():
        got = blob.tensors[name]
        assert got.dtype == np.asarray(arr).dtype.newbyteorder("<") and got.shape == np.shape(arr)
        np.testing.assert_array_equal(got, arr)
    assert blob.meta == META
    assert blob.model_id == zlib.crc32(data) and blob.total_len == len(data) == len(data) // 8 * 8
    assert B.read_blob(data + b"\xff" * 13).model_id == blob.model_id  # flash padding ignored
    assert B.write_blob(tensors, meta=META) == data  # deterministic


def test_offsets_are_8_aligned() -> None:
    data = B.write_blob(sample_tensors())
    n = struct.unpack_from("<I", data, 16)[0]
    for i in range(n):
        off = B.TABLE_ENTRY.unpack_from(data, 24 + 64 * i)[8]
        assert off % 8 == 0


@pytest.mark.parametrize("tensors, msg", [
    ({"f": np.zeros(3, dtype=np.float32)}, "integer-only"),
    ({"i64": np.zeros(3, dtype=np.int64)}, "cannot go in a blob"),
    ({"has space": np.zeros(1, dtype=np.int8)}, "printable ASCII"),
    ({"x" * 32: np.zeros(1, dtype=np.int8)}, "1..31"),
    ({"": np.zeros(1, dtype=np.int8)}, "1..31"),
    ({"d5": np.zeros((1, 1, 1, 1, 1), dtype=np.int8)}, "at most 4"),
])
def test_write_refuses(tensors: dict, msg: str) -> None:
    with pytest.raises(B.BlobError, match=msg):
        B.write_blob(tensors)


def test_write_refuses_meta_twice() -> None:
    with pytest.raises(B.BlobError, match="meta"):
        B.write_blob({"meta.json": B.meta_tensor({})}, meta={})


def test_c_agrees_on_every_tensor(blob_tool: Path) -> None:
    tensors = sample_tensors()
    data = B.write_blob(tensors, meta=META)
    py = B.read_blob(data)
    (c,) = run_c(blob_tool, [data])
    assert c["status"] == 0 and c["model_id"] == py.model_id and c["len"] == len(data)
    assert list(c["tensors"]) == list(py.tensors)
    for name, arr in py.tensors.items():
        t = c["tensors"][name]
        assert t["get"] == 0, f"{name}: ebq_blob_get self-check failed with {t['get']}"
        assert B.DTYPES[t["dtype"]] == arr.dtype
        assert t["ndim"] == arr.ndim and t["shape4"] == [*arr.shape, 0, 0, 0, 0][:4]
        assert t["bytes"] == arr.tobytes() and t["nbytes"] == arr.nbytes


def test_empty_blob_is_valid(blob_tool: Path) -> None:
    data = B.write_blob({})
    assert B.read_blob(data).tensors == {}
    assert run_c(blob_tool, [data])[0]["status"] == 0


def test_every_prefix(blob_tool: Path) -> None:
    data = small_blob()
    prefixes = [data[:n] for n in range(len(data) + 1)]
    results = run_c(blob_tool, prefixes)
    for n, c in enumerate(results):
        want = 0 if n == len(data) else B.ERR_TRUNCATED
        assert py_status(prefixes[n]) == want, n
        assert c["status"] == want, f"prefix of {n} bytes: C says {c['status']}"


def test_every_flipped_byte(blob_tool: Path) -> None:
    data = small_blob()
    bad = []
    for i in range(len(data)):
        for mask in (0x01, 0x80):
            d = bytearray(data)
            d[i] ^= mask
            bad.append(bytes(d))
    for d, c in zip(bad, run_c(blob_tool, bad), strict=True):
        assert c["status"] < 0 and c["status"] == py_status(d)


def test_magic_and_version_messages(blob_tool: Path) -> None:
    data = small_blob()
    wrong_magic = b"GGUF" + data[4:]
    wrong_version = data[:4] + struct.pack("<I", 7) + data[8:]
    with pytest.raises(B.BlobError, match=r"magic b'GGUF', expected b'EBQB'") as e:
        B.read_blob(wrong_magic)
    assert e.value.code == B.ERR_MAGIC
    with pytest.raises(B.BlobError, match=r"version 7; this reader supports 1") as e:
        B.read_blob(wrong_version)
    assert e.value.code == B.ERR_VERSION
    with pytest.raises(B.BlobError, match="CRC-32"):
        B.read_blob(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(B.BlobError, match="truncated: header says"):
        B.read_blob(data[:-8])
    c = run_c(blob_tool, [wrong_magic, wrong_version])
    assert [r["status"] for r in c] == [B.ERR_MAGIC, B.ERR_VERSION]


def _edit_entry(data: bytes, i: int, fmt: str, pos: int, value: int) -> bytes:
    d = bytearray(data)
    struct.pack_into(fmt, d, 24 + 64 * i + pos, value)
    return recrc(d)


def bad_tables() -> list[tuple[str, bytes]]:
    """Blobs whose CRC is right but whose table lies, one lie each."""
    data = small_blob()  # entries: cfg.dims (i32 [3]), w (i8 [2,2]), meta.json
    d_dup = bytearray(data)
    d_dup[24 + 64:24 + 64 + 32] = d_dup[24:24 + 32]
    d_noterm = bytearray(data)
    d_noterm[24:24 + 32] = b"n" * 32
    d_space = bytearray(data)
    d_space[24] = 0x20
    d_gap = bytearray(data)
    d_gap[24 + 10] = 0x41  # garbage after the NUL of "cfg.dims"
    w_offset = struct.unpack_from("<I", data, 24 + 64 + 52)[0]
    return [
        ("dtype 0", _edit_entry(data, 0, "<B", 32, 0)),
        ("dtype 7", _edit_entry(data, 0, "<B", 32, 7)),
        ("ndim 5", _edit_entry(data, 1, "<B", 33, 5)),
        ("ndim 0 with shape", _edit_entry(data, 1, "<B", 33, 0)),
        ("pad0", _edit_entry(data, 0, "<H", 34, 1)),
        ("pad1", _edit_entry(data, 0, "<I", 60, 1)),
        ("shape vs nbytes", _edit_entry(data, 0, "<I", 36, 4)),
        ("huge shape", _edit_entry(data, 0, "<I", 36, 0x40000000)),
        ("misaligned offset", _edit_entry(data, 1, "<I", 52, w_offset + 4)),
        ("offset into table", _edit_entry(data, 0, "<I", 52, 24)),
        ("offset past end", _edit_entry(data, 2, "<I", 52, 0xFFFFFFF8)),
        ("nbytes past end", _edit_entry(data, 2, "<I", 56, 0xFFFFFFFF)),
        ("overlap", _edit_entry(data, 1, "<I", 52, struct.unpack_from("<I", data, 24 + 52)[0])),
        ("duplicate name", recrc(d_dup)),
        ("unterminated name", recrc(d_noterm)),
        ("space in name", recrc(d_space)),
        ("bytes after NUL", recrc(d_gap)),
        ("table reserved", recrc(data[:20] + b"\1\0\0\0" + data[24:])),
        ("n_tensors huge", recrc(data[:16] + b"\xff\xff\xff\x0f" + data[20:])),
        ("total < header", data[:8] + struct.pack("<I", 20) + data[12:]),
    ]


def test_bad_tables_both_sides(blob_tool: Path) -> None:
    cases = bad_tables()
    results = run_c(blob_tool, [d for _, d in cases])
    for (what, d), c in zip(cases, results, strict=True):
        py = py_status(d)
        assert py < 0, f"{what}: Python accepted it"
        assert c["status"] == py, f"{what}: C {c['status']} vs Python {py}"


def test_random_mutations_agree(blob_tool: Path) -> None:
    """Seeded fuzzing with the CRC fixed up, so mutations reach the table checks."""
    rng = random.Random(1)
    base = B.write_blob(sample_tensors(), meta=META)
    blobs = []
    for _ in range(1500):
        d = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(16, 24 + 64 * 10)
            d[pos] = rng.choice([0, 1, 0xFF, rng.randrange(256)])
        cut = rng.choice([len(d), len(d), rng.randrange(len(d) + 1)])
        blobs.append(recrc(d[:max(cut, 16)]) if cut >= 16 and rng.random() < 0.9 else bytes(d))
    for d, c in zip(blobs, run_c(blob_tool, blobs), strict=True):
        assert c["status"] == py_status(d)


def test_misaligned_blob_is_refused(blob_tool: Path) -> None:
    assert run_c(blob_tool, [small_blob()], "misalign")[0]["status"] == -11  # EBQ_ERR_ARG


def test_c_header_wraps_the_bytes(tmp_path: Path) -> None:
    data = B.write_blob(sample_tensors(), meta=META)
    (tmp_path / "model_blob.h").write_text(B.blob_to_c_header(data, "model_blob"))
    (tmp_path / "main.c").write_text(
        '#include "ebq_blob.h"\n#include "model_blob.h"\n'
        "int main(void) { ebq_blob b;\n"
        "  if (ebq_blob_parse(&b, model_blob, MODEL_BLOB_LEN) != EBQ_OK) return 1;\n"
        "  if (b.model_id != MODEL_BLOB_MODEL_ID || b.len != sizeof model_blob) return 2;\n"
        "  return 0; }\n")
    exe = build_c("blob_header_test", [FW / "src" / "blob.c", tmp_path / "main.c"],
                  [f"-I{tmp_path}"])
    res = subprocess.run([str(exe)], env={**os.environ, **SAN_ENV})
    exe.unlink()
    assert res.returncode == 0
    with pytest.raises(ValueError, match="C identifier"):
        B.blob_to_c_header(data, "1bad")


def shipped_blobs() -> list[Path]:
    """Model blobs shipped in the package, plus $EBQ_TEST_BLOB (for checking a fresh build)."""
    paths = sorted((ROOT / "hil" / "models").glob("*/model.bin"))
    if os.environ.get("EBQ_TEST_BLOB"):
        paths.append(Path(os.environ["EBQ_TEST_BLOB"]))
    return paths


@pytest.mark.parametrize("path", shipped_blobs() or [None], ids=lambda p: p and p.parent.name)
def test_shipped_blob_c_agrees(blob_tool: Path, path: Path | None) -> None:
    """A real model blob: both readers see the same tensors; the metadata says what it is."""
    if path is None:
        pytest.skip("no shipped hil/models/*/model.bin yet (hil quantize --all writes them)")
    data = path.read_bytes()
    py = B.read_blob(data)
    (c,) = run_c(blob_tool, [data])
    assert c["status"] == 0 and c["model_id"] == py.model_id
    assert list(c["tensors"]) == list(py.tensors)
    for name, arr in py.tensors.items():
        t = c["tensors"][name]
        assert t["get"] == 0 and t["bytes"] == arr.tobytes() and B.DTYPES[t["dtype"]] == arr.dtype
        assert t["shape4"] == [*arr.shape, 0, 0, 0, 0][:4]
    assert {"tok.cfg", "tok.bytes", "tok.offsets", "tok.ids", "cfg.dims"} <= set(py.tensors)
    assert py.meta, "meta.json missing or empty"


def test_cli_info_and_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    B.add_parsers(parser.add_subparsers())
    path = tmp_path / "m.bin"
    path.write_bytes(B.write_blob(sample_tensors(), meta=META))
    args = parser.parse_args(["blob", "info", str(path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"model id {zlib.crc32(path.read_bytes()):08x}" in out and "w.u16" in out
    args = parser.parse_args(["blob", "header", str(path), "-o", str(tmp_path / "m.h")])
    assert args.func(args) == 0 and "ebq_model_blob[" in (tmp_path / "m.h").read_text()
    path.write_bytes(b"GGUF" + path.read_bytes()[4:])
    args = parser.parse_args(["blob", "info", str(path)])
    assert args.func(args) == 1 and "expected b'EBQB'" in capsys.readouterr().err


def test_check_spec_accepts_the_specs_the_engine_computes() -> None:
    """Spec 1 (the shipped models) and 2 (att_output, segment bias) pass; any other cfg.dims
    version is the device's EBQ_ERR_BLOB_VERSION before a build, not at boot."""
    from hil.quant.blob import (
        ERR_TENSOR,
        ERR_VERSION,
        BlobError,
        check_spec,
        read_blob,
        write_blob,
    )

    for version, code in ((1, None), (2, None), (3, ERR_VERSION), (0, ERR_VERSION)):
        dims = np.array([version, 10, 8, 4, 8, 1, 3, 2], np.int32)
        blob = read_blob(write_blob({"cfg.dims": dims}))
        if code is None:
            check_spec(blob)
            continue
        with pytest.raises(BlobError) as e:
            check_spec(blob)
        assert e.value.code == code
    with pytest.raises(BlobError) as e:
        check_spec(read_blob(write_blob({"x": np.zeros(2, np.int8)})))
    assert e.value.code == ERR_TENSOR
