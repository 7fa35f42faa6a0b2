"""The model blob: one versioned little-endian binary that Python writes and the C engine reads.

The format is specified in docs/model-blob.md; firmware/src/blob.c is its C reader. Everything in
a blob is a named tensor (config ints are i32 scalars/arrays, metadata JSON is the u8 tensor
"meta.json"), so both readers share one table walk and a new field never needs a new version.

Layout (all integers little-endian)::

    0   magic      b"EBQB"
    4   u32        format version (FORMAT_VERSION)
    8   u32        total length in bytes (the blob; a flash partition may hold trailing bytes)
    12  u32        CRC-32 (zlib.crc32) of bytes [16, total length)
    16  u32        number of tensors N
    20  u32        reserved, 0
    24  N entries of 64 bytes (TABLE_ENTRY):
            name[32] (NUL-padded, 1..31 bytes, ASCII printable), u8 dtype, u8 ndim, u16 0,
            u32 shape[4] (0 beyond ndim), u32 offset (from blob start, 8-aligned),
            u32 byte length, u32 0
    ... tensor data in table order, each at an 8-aligned offset, zero padding between,
        total length a multiple of 8.

This module is numpy-only on purpose: `hil run` and the C tests read blobs without torch.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"EBQB"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (FORMAT_VERSION,)
HEADER = struct.Struct("<4sIII")          # magic, version, total_len, crc32
TABLE_HEADER = struct.Struct("<II")       # n_tensors, reserved
TABLE_ENTRY = struct.Struct("<32sBBH4IIII")  # name, dtype, ndim, pad, shape[4], off, nbytes, pad
TABLE_START = HEADER.size + TABLE_HEADER.size  # 24
ALIGN = 8
MAX_NDIM = 4
NAME_BYTES = 32  # including the terminating NUL: names are at most 31 bytes
META_NAME = "meta.json"

# Status codes, identical to EBQ_ERR_BLOB_* in firmware/include/ebq.h (a test checks).
ERR_TRUNCATED = -1
ERR_MAGIC = -2
ERR_VERSION = -3
ERR_CRC = -4
ERR_TENSOR = -5

# dtype code <-> numpy dtype (little-endian). Code 0 is never valid, so zeroed memory is no table.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<i1"),
    2: np.dtype("<u1"),
    3: np.dtype("<i2"),
    4: np.dtype("<u2"),
    5: np.dtype("<i4"),
    6: np.dtype("<u4"),
}
DTYPE_NAMES = {1: "i8", 2: "u8", 3: "i16", 4: "u16", 5: "i32", 6: "u32"}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in DTYPES.items()}
_NAME_RE = re.compile(r"[\x21-\x7e]{1,31}")


class BlobError(ValueError):
    """A blob that cannot be read or written; `code` is the matching C status (EBQ_ERR_BLOB_*)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Blob:
    """A parsed blob: tensors are read-only views into the bytes given to `read_blob`."""

    tensors: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    model_id: int = 0       # zlib.crc32 of the whole blob (header included), as the device reports
    version: int = FORMAT_VERSION
    total_len: int = 0


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def dtype_code(dtype: np.dtype) -> int:
    """The blob dtype code of a numpy dtype; only the six integer types the engine uses."""
    dt = np.dtype(dtype)
    code = _CODE_OF.get((dt.kind, dt.itemsize))
    if code is None:
        raise BlobError(ERR_TENSOR, f"dtype {dt} cannot go in a blob (allowed: "
                        f"{', '.join(DTYPE_NAMES.values())}); the device is integer-only")
    return code


def meta_tensor(meta: dict[str, Any]) -> np.ndarray:
    """Metadata as the u8 tensor stored under "meta.json" (compact UTF-8 JSON, keys sorted)."""
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def write_blob(tensors: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> bytes:
    """Serialise named integer tensors (in dict order) into one blob.

    `meta`, if given, is stored as the "meta.json" tensor (which must then not be in `tensors`).
    Data is written little-endian and C-contiguous whatever the input's layout.
    """
    items = list(tensors.items())
    if meta is not None:
        if META_NAME in tensors:
            raise BlobError(ERR_TENSOR, f"'{META_NAME}' given both as a tensor and as meta")
        items.append((META_NAME, meta_tensor(meta)))
    seen: set[str] = set()
    arrays: list[tuple[bytes, int, tuple[int, ...], bytes]] = []
    for name, value in items:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise BlobError(ERR_TENSOR, f"tensor name {name!r} must be 1..31 printable ASCII "
                            "characters without spaces")
        if name in seen:
            raise BlobError(ERR_TENSOR, f"duplicate tensor name {name!r}")
        seen.add(name)
        arr = np.asarray(value)
        code = dtype_code(arr.dtype)
        if arr.ndim > MAX_NDIM:
            raise BlobError(ERR_TENSOR, f"tensor {name!r} has {arr.ndim} dims; at most "
                            f"{MAX_NDIM}")
        if any(d > 0xFFFFFFFF for d in arr.shape):
            raise BlobError(ERR_TENSOR, f"tensor {name!r} shape {arr.shape} exceeds u32")
        raw = np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()
        arrays.append((name.encode("ascii"), code, tuple(arr.shape), raw))

    table_end = TABLE_START + TABLE_ENTRY.size * len(arrays)
    offset = _align(table_end)
    entries = []
    for name_b, code, shape, raw in arrays:
        dims = list(shape) + [0] * (MAX_NDIM - len(shape))
        entries.append(TABLE_ENTRY.pack(name_b, code, len(shape), 0, *dims, offset, len(raw), 0))
        offset = _align(offset + len(raw))
    total = offset
    if total > 0xFFFFFFFF:
        raise BlobError(ERR_TENSOR, f"blob would be {total} bytes; the format holds < 4 GiB")

    out = bytearray(total)
    out[HEADER.size:TABLE_START] = TABLE_HEADER.pack(len(arrays), 0)
    out[TABLE_START:table_end] = b"".join(entries)
    for entry, (_, _, _, raw) in zip(entries, arrays, strict=True):
        off = TABLE_ENTRY.unpack(entry)[8]
        out[off:off + len(raw)] = raw
    crc = zlib.crc32(out[HEADER.size:])
    out[:HEADER.size] = HEADER.pack(MAGIC, FORMAT_VERSION, total, crc)
    return bytes(out)


def _parse_entry(data: bytes, i: int, min_offset: int, total: int
                 ) -> tuple[str, int, tuple[int, ...], int, int]:
    """One table entry, checked exactly as blob.c checks it (same order, same codes)."""
    pos = TABLE_START + i * TABLE_ENTRY.size
    name_b, code, ndim, pad0, *rest = TABLE_ENTRY.unpack_from(data, pos)
    dims, (offset, nbytes, pad1) = rest[:MAX_NDIM], rest[MAX_NDIM:]
    where = f"table entry {i} (at byte {pos})"
    nul = name_b.find(b"\0")
    if nul <= 0 or any(name_b[nul:]) or not _NAME_RE.fullmatch(name_b[:nul].decode("latin-1")):
        raise BlobError(ERR_TENSOR, f"{where}: bad name {name_b!r} (need 1..31 printable ASCII "
                        "bytes, NUL-padded)")
    name = name_b[:nul].decode("ascii")
    where = f"{where} '{name}'"
    if code not in DTYPES:
        raise BlobError(ERR_TENSOR, f"{where}: unknown dtype code {code} (known: "
                        f"{sorted(DTYPES)})")
    if ndim > MAX_NDIM or pad0 or pad1 or any(dims[ndim:]):
        raise BlobError(ERR_TENSOR, f"{where}: bad ndim {ndim}, shape {dims} or non-zero "
                        "reserved fields")
    count = 1
    for d in dims[:ndim]:
        count *= d
    if count * DTYPES[code].itemsize != nbytes:
        raise BlobError(ERR_TENSOR, f"{where}: shape {dims[:ndim]} x {DTYPES[code].itemsize} "
                        f"bytes != byte length {nbytes}")
    if offset % ALIGN or offset < min_offset or offset + nbytes > total:
        raise BlobError(ERR_TENSOR, f"{where}: data [{offset}, {offset + nbytes}) is not "
                        f"{ALIGN}-aligned, overlaps the table or the previous tensor (which "
                        f"ends at {min_offset}), or passes the blob end {total}")
    return name, code, tuple(dims[:ndim]), offset, nbytes


def read_blob(data: bytes) -> Blob:
    """Parse and fully validate a blob; raises BlobError saying what was expected and found.

    Bytes after the blob's total length are ignored (a flash partition may be larger).
    """
    data = bytes(data)
    if len(data) < HEADER.size:
        raise BlobError(ERR_TRUNCATED, f"blob truncated: {len(data)} bytes, a header needs "
                        f"{HEADER.size}")
    magic, version, total, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BlobError(ERR_MAGIC, f"not a model blob: magic {magic!r}, expected {MAGIC!r}")
    if version not in SUPPORTED_VERSIONS:
        raise BlobError(ERR_VERSION, f"blob format version {version}; this reader supports "
                        f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
    if total > len(data):
        raise BlobError(ERR_TRUNCATED, f"blob truncated: header says {total} bytes, got "
                        f"{len(data)}")
    if total < TABLE_START:
        raise BlobError(ERR_TRUNCATED, f"blob length {total} is shorter than the "
                        f"{TABLE_START}-byte header")
    found = zlib.crc32(data[HEADER.size:total])
    if found != crc:
        raise BlobError(ERR_CRC, f"blob corrupted: CRC-32 of bytes [{HEADER.size}, {total}) is "
                        f"{found:#010x}, header says {crc:#010x}")
    n, reserved = TABLE_HEADER.unpack_from(data, HEADER.size)
    if reserved:
        raise BlobError(ERR_TENSOR, f"reserved table-header field is {reserved}, expected 0")
    if n > (total - TABLE_START) // TABLE_ENTRY.size:
        raise BlobError(ERR_TRUNCATED, f"tensor table of {n} entries does not fit in "
                        f"{total} bytes")
    tensors: dict[str, np.ndarray] = {}
    min_offset = TABLE_START + n * TABLE_ENTRY.size
    for i in range(n):
        name, code, shape, offset, nbytes = _parse_entry(data, i, min_offset, total)
        if name in tensors:
            raise BlobError(ERR_TENSOR, f"table entry {i}: duplicate tensor name '{name}'")
        arr = np.frombuffer(data, dtype=DTYPES[code], count=nbytes // DTYPES[code].itemsize,
                            offset=offset)
        tensors[name] = arr.reshape(shape)
        min_offset = offset + nbytes
    meta: dict[str, Any] = {}
    if META_NAME in tensors:
        m = tensors[META_NAME]
        if m.dtype != np.uint8 or m.ndim != 1:
            raise BlobError(ERR_TENSOR, f"'{META_NAME}' must be a 1-D u8 tensor")
        try:
            meta = json.loads(m.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BlobError(ERR_TENSOR, f"'{META_NAME}' is not UTF-8 JSON: {e}") from None
    return Blob(tensors=tensors, meta=meta, model_id=zlib.crc32(data[:total]),
                version=version, total_len=total)


def blob_to_c_header(data: bytes, symbol: str) -> str:
    """A C header that only wraps the blob's bytes (read back by ebq_blob_parse at run time).

    The array is 8-byte aligned (the format needs 4; see docs/model-blob.md) and `const`, so it
    stays in flash. Include it from exactly one .c file: it defines storage.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", symbol):
        raise ValueError(f"symbol {symbol!r} is not a C identifier")
    blob = read_blob(data)  # refuse to embed a broken blob
    raw = data[:blob.total_len]
    guard = f"{symbol.upper()}_H"
    lines = [
        f"/* Generated by hil.quant.blob.blob_to_c_header; do not edit. Model blob "
        f"v{blob.version}, {len(raw)} bytes, model id {blob.model_id:#010x}. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "#include <stdint.h>",
        f"#define {symbol.upper()}_LEN {len(raw)}u",
        f"#define {symbol.upper()}_MODEL_ID {blob.model_id:#010x}u",
        f"static const _Alignas(8) uint8_t {symbol}[{len(raw)}] = {{",
    ]
    for i in range(0, len(raw), 16):
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in raw[i:i + 16]) + ",")
    lines += ["};", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


# ---- `hil blob`: inspect a blob, wrap it in a C header ------------------------------------------

# What the device prints for each status (firmware/src/model.c, ebq_strerror), so that a host-side
# refusal reads like the boot-time one it prevents.
DEVICE_WORDS = {ERR_TRUNCATED: "blob truncated", ERR_MAGIC: "not a model blob (bad magic)",
                ERR_VERSION: "unsupported blob or spec version", ERR_CRC: "blob checksum mismatch",
                ERR_TENSOR: "blob tensor missing or wrong dtype/shape"}


def check_spec(blob: Blob) -> None:
    """Raise BlobError(ERR_VERSION) unless cfg.dims names an integer spec the engine computes
    (hil/quant/reference.py SPEC_VERSIONS: 1, the shipped models, and 2, with att_output and
    the segment bias). Why here: the container is the same for both, so read_blob accepts a
    blob of any spec, and ebq_model_load would refuse it only at boot."""
    from hil.quant.reference import SPEC_VERSIONS

    dims = blob.tensors.get("cfg.dims")
    if dims is None or dims.dtype != np.int32 or dims.size < 1:
        raise BlobError(ERR_TENSOR, "no cfg.dims (i32) tensor: not an EmbBERT-Q model blob")
    if int(dims.ravel()[0]) not in SPEC_VERSIONS:
        raise BlobError(ERR_VERSION, f"integer spec version {int(dims.ravel()[0])} in cfg.dims; "
                        f"this engine computes {', '.join(map(str, SPEC_VERSIONS))}")


def refuse_like_device(path: Any) -> Blob:
    """The parsed blob at `path`, or a UsageError (exit 2) with the device's own words and the
    host's detail. Why: a blob the firmware refuses used to build fine and fail only at boot
    (`hil build` exited 0); checking before the build says so at once."""
    from pathlib import Path

    from hil.errors import UsageError

    try:
        blob = read_blob(Path(path).read_bytes())
        check_spec(blob)
        return blob
    except OSError as exc:
        raise UsageError(f"model blob {path}: {exc.strerror}; give a model name (hil/models) "
                         f"or the path of a .bin blob") from None
    except BlobError as exc:
        raise UsageError(f"model blob {path} is not a valid EmbBERT-Q blob; the device would "
                         f"refuse it at boot: "
                         f"{DEVICE_WORDS.get(exc.code, 'unknown status')} ({exc})") from None


def describe(blob: Blob) -> str:
    """A human-readable summary: header facts, metadata keys and the tensor table."""
    lines = [f"model blob v{blob.version}, {blob.total_len} bytes, model id {blob.model_id:08x}"]
    for key in ("model", "labels", "source_sha256", "spec_version"):
        if key in blob.meta:
            lines.append(f"  meta.{key}: {blob.meta[key]}")
    groups: dict[str, int] = {}
    for name, arr in blob.tensors.items():
        prefix = name.split(".")[0]
        groups[prefix] = groups.get(prefix, 0) + arr.nbytes
    lines.append("  bytes by prefix: " + ", ".join(f"{k} {v}" for k, v in groups.items()))
    for name, arr in blob.tensors.items():
        dt = DTYPE_NAMES[dtype_code(arr.dtype)]
        lines.append(f"  {name:<31} {dt:<4} {str(list(arr.shape)):<14} {arr.nbytes:>9} B")
    return "\n".join(lines)


def _blob_path(args: Any, command: str) -> Any:
    """--model (a shipped name or a path; the old positional form too) -> the blob's path, or
    None after saying what is missing (exit 2)."""
    from hil.paths import find_model

    name = args.model or args.blob
    if not name:
        print(f"hil blob {command}: give --model NAME (a shipped model) or --model PATH.bin",
              file=sys.stderr)
        return None
    try:
        return find_model(name, "model.bin")
    except FileNotFoundError as e:
        print(f"hil blob {command}: {e}", file=sys.stderr)
        return None


def _cmd_blob(args: Any) -> int:
    """`hil blob info` (validate and describe) and `hil blob header` (a C header of the bytes)."""
    from pathlib import Path

    path = _blob_path(args, args.blob_command)
    if path is None:
        return 2
    try:
        if args.blob_command == "info":
            print(describe(read_blob(path.read_bytes())))
            return 0
        text = blob_to_c_header(path.read_bytes(), args.symbol)
    except (OSError, ValueError) as e:  # BlobError is a ValueError
        print(f"hil blob {args.blob_command}: {path}: {e}", file=sys.stderr)
        return 1
    if args.out == "-":
        print(text, end="")
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    return 0


def add_parsers(sub: Any) -> None:
    """`hil blob info BLOB` and `hil blob header BLOB -o model_blob.h` (see docs/model-blob.md)."""
    p = sub.add_parser("blob", help="inspect a model blob or wrap it in a C header",
                       description="Model blob tools (format: docs/model-blob.md).")
    bsub = p.add_subparsers(dest="blob_command", metavar="ACTION", required=True)
    info = bsub.add_parser("info", help="validate a blob and print its header, meta and tensors")
    info.add_argument("blob", nargs="?", help=argparse.SUPPRESS)
    info.add_argument("--model", help="a shipped model's name, or a model blob (.bin)")
    info.set_defaults(func=_cmd_blob)
    hdr = bsub.add_parser("header", help="write a C header holding the blob's bytes")
    hdr.add_argument("blob", nargs="?", help=argparse.SUPPRESS)
    hdr.add_argument("--model", help="a shipped model's name, or a model blob (.bin)")
    hdr.add_argument("-o", "--out", default="-", help="output .h (default: stdout)")
    hdr.add_argument("--symbol", default="ebq_model_blob", help="C array name")
    hdr.set_defaults(func=_cmd_blob)
