"""The C engine (built natively with ASan + UBSan) against the integer reference, bit for bit.

firmware/tests/engine_main.c loads a blob file and answers one line per token-id sequence. The
logits must equal hil/quant/reference.py exactly on real test sentences of every shipped model
(hil/models/<name>/model.bin; a seeded random model stands in when none is shipped), and every
blob-level or input-level error must come back as its documented status code.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hil.paths import datasets_dir
from hil.quant import reference as R
from hil.quant.blob import read_blob, write_blob

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
MODELS = ROOT / "hil" / "models"
SCENARIO_DATA = ROOT / "scenarios" / "data"  # <name>_test.jsonl: labelled test sentences
SOURCES = ["tests/engine_main.c", "src/model.c", "src/forward.c", "src/blob.c",
           "src/tokenizer.c", *sorted(str(p.relative_to(FW)) for p in FW.glob("src/ops/*.c"))]
CC = shutil.which("gcc") or shutil.which("cc")

pytestmark = pytest.mark.skipif(CC is None, reason="no host C compiler")


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("engine") / "engine_main"
    cmd = [CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-I", str(FW / "include"), "-I", str(FW / "src"),
           *[str(FW / s) for s in SOURCES], "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def run_engine(engine: Path, blob: Path, lines: list[str]) -> list[str]:
    p = subprocess.run([str(engine), str(blob)], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=600)
    assert "runtime error" not in p.stderr and "AddressSanitizer" not in p.stderr, p.stderr
    return p.stdout.splitlines()


def shipped() -> list[Path]:
    return sorted(MODELS.glob("*/model.bin")) if MODELS.is_dir() else []


@pytest.fixture(scope="session")
def random_blob(tmp_path_factory) -> Path:
    """A seeded random EmbBERT quantized the same way (for when no model is shipped)."""
    pytest.importorskip("torch")
    from hil.quant.quantize import blob_bytes, random_quant_model

    path = tmp_path_factory.mktemp("rand") / "random.bin"
    path.write_bytes(blob_bytes(random_quant_model(num_labels=7, seed=1)))
    return path


@pytest.fixture(scope="session")
def legacy_blob(tmp_path_factory) -> Path:
    """A seeded random model of the shipped models' architecture: spec 1 (no segment embedding,
    no att_output), kept working until they are retrained."""
    pytest.importorskip("torch")
    from hil.quant.quantize import blob_bytes, random_quant_model

    path = tmp_path_factory.mktemp("legacy") / "legacy.bin"
    path.write_bytes(blob_bytes(random_quant_model(num_labels=7, seed=1, att_output=False,
                                                   segments=0)))
    return path


@pytest.fixture(scope="session")
def no_ao_blob(tmp_path_factory) -> Path:
    """`hil train --no-att-output`: spec 2 with the segment bias and no att_output."""
    pytest.importorskip("torch")
    from hil.quant.quantize import blob_bytes, random_quant_model

    path = tmp_path_factory.mktemp("noao") / "no_ao.bin"
    path.write_bytes(blob_bytes(random_quant_model(num_labels=3, seed=2, att_output=False,
                                                   n_layers=2)))
    return path


def model_blobs(request) -> list[Path]:
    return shipped() or [request.getfixturevalue("random_blob")]


def _texts(name: str, count: int) -> list[str]:
    """The first `count` test texts of dataset `name`: from the repository's scenario data
    (scenarios/data/<name>_test.jsonl) when it has that many, else from the full test split
    where one is here (../shared/datasets or `hil data fetch`), else all the repository has.
    Why: the tests must run from a bare copy of the repository, with no ../shared beside it."""
    if not (SCENARIO_DATA / f"{name}_test.jsonl").is_file():
        name = "nlu_scenario"
    with open(SCENARIO_DATA / f"{name}_test.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][:count]
    full = datasets_dir() / name / "test.jsonl.gz"
    if len(texts) < count and full.is_file():
        with gzip.open(full, "rt", encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in itertools.islice(f, count)]
    return texts


def test_sentences(blob_path: Path, count: int) -> list[list[int]]:
    """`count` test sentences of the blob's dataset (nlu_scenario for a random model), tokenized
    with the model's own tokenizer when it ships one."""
    from hil.quant.tokenizer import Tokenizer

    meta = read_blob(blob_path.read_bytes()).meta
    name = meta.get("calibration", {}).get("split", "").split("/")[0] or meta.get(
        "model", "nlu_scenario")
    own = blob_path.parent / "tokenizer.json"
    tok = Tokenizer.from_file(own) if own.is_file() else Tokenizer.from_file()
    max_len = meta["dims"]["max_len"]
    return [tok.encode(text, max_len=max_len) for text in _texts(name, count)]


test_sentences.__test__ = False  # a helper, not a test


def check_bit_exact(engine: Path, blob_path: Path, seqs: list[list[int]]) -> None:
    blob = read_blob(blob_path.read_bytes())
    got = run_engine(engine, blob_path, [" ".join(map(str, s)) for s in seqs])
    assert len(got) == len(seqs)
    for s, line in zip(seqs, got, strict=True):
        f = line.split()
        assert f[0] == "OK", (s, line)
        want = R.forward(blob, s)
        assert [int(v) for v in f[2:]] == want.tolist(), s
        assert int(f[1]) == arena_bytes(blob.meta["dims"], len(s))


def arena_bytes(dims: dict, n: int, dsp: bool = False) -> int:
    """The arena formula of docs/int8-spec.md section 4 (firmware/src/forward.c ebq_arena_bytes
    with ebq_layer_rows_s8_get_buffer_size of the portable kernels, or of the DSP twins)."""
    def a8(v: int) -> int:
        return (v + 7) // 8 * 8

    d, u, nk = dims["dim"], 4, (n + 7) // 8 * 8  # EBQ_MICRO, EBQ_KEYS_PAD
    pc = 4 * u * d + 2 * u * d  # ebq_project_combine_s8_get_buffer_size
    att = 2 * u * d + 16 * n + 2 * (u + 4) * nk  # attention buffer for U queries
    work = a8(4 * u * d) + a8(max(att, pc))  # ebq_layer_rows_generic_s8 (spec 2 the same)
    if dsp:
        b = min((n + 3) // 4 * 4, 28) if n <= 128 else 16  # EBQ_BLOCK_ROWS(n)
        p1, p2 = 8 * d + 16 * n, 4 * d + max(2 * b * d + 4 * d, pc)
        work = max(work, a8(2 * b * nk) + a8(8 * nk) + a8(max(p1, p2)))
    return 2 * a8(n * d) + a8(work)


def test_engine_bit_exact_sentences(engine, request) -> None:
    for blob_path in model_blobs(request):
        check_bit_exact(engine, blob_path, test_sentences(blob_path, 100))


@pytest.mark.slow
def test_engine_bit_exact_sentences_slow(engine, request) -> None:
    for blob_path in model_blobs(request):
        check_bit_exact(engine, blob_path, test_sentences(blob_path, 600))


def test_engine_edge_inputs(engine, random_blob) -> None:
    """Length 1, max length, all padding, padding inside, extreme ids: still bit exact."""
    rng = np.random.default_rng(5)
    seqs = [[2], [0], [0, 0, 0], [2, 0, 0, 9], [2] + [8191] * 255, [2] + [5] * 255,
            [2] + list(rng.integers(0, 8192, 255)), list(rng.integers(0, 8192, 256))]
    check_bit_exact(engine, random_blob, seqs)


def test_engine_every_variant_bit_exact(engine, random_blob, legacy_blob, no_ao_blob) -> None:
    """Spec 2 (att_output + segment bias, and segment bias only) and spec 1 (the shipped
    models' architecture), on edge inputs and real sentences: bit exact, arena as documented."""
    rng = np.random.default_rng(6)
    edge = [[2], [0], [2, 0, 0, 9], [2] + list(rng.integers(0, 8192, 130)),
            list(rng.integers(0, 8192, 256))]
    for path, spec in ((random_blob, 2), (legacy_blob, 1), (no_ao_blob, 2)):
        blob = read_blob(path.read_bytes())
        assert int(blob.tensors["cfg.dims"][0]) == spec == blob.meta["spec_version"]
        assert ("emb.seg.b" in blob.tensors) == (spec == 2)
        assert ("l0.ao.w" in blob.tensors) == (path == random_blob)
        check_bit_exact(engine, path, edge + test_sentences(path, 30))


def test_engine_input_errors(engine, random_blob) -> None:
    lines = ["", " ".join(["2"] * 257), "2 8192", "2 70000", "ARENA 1000", "2 5 6",
             f"ARENA {arena_bytes({'dim': 128}, 3) - 1}", "2 5 6",
             f"ARENA {arena_bytes({'dim': 128}, 3)}", "2 5 6"]
    out = run_engine(engine, random_blob, lines)
    codes = [line.split()[1] if line.startswith("ERR") else "OK" for line in out]
    assert codes == ["-9", "-7", "-8", "-8", "-10", "-10", "OK"], out


def _mutated(blob_path: Path, tmp_path: Path, **changes) -> Path:
    blob = read_blob(blob_path.read_bytes())
    tensors = {k: np.array(v) for k, v in blob.tensors.items() if k != "meta.json"}
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            del tensors[name]
        else:
            tensors[name] = value
    out = tmp_path / "bad.bin"
    out.write_bytes(write_blob(tensors, meta=blob.meta))
    return out


def test_engine_blob_errors(engine, random_blob, tmp_path) -> None:
    """Each blob defect comes back from ebq_model_load as its own status code."""
    good = random_blob.read_bytes()

    def load_code(data: bytes) -> str:
        p = tmp_path / "x.bin"
        p.write_bytes(data)
        out = run_engine(engine, p, ["2"])
        return out[0].split()[1] if out[0].startswith("LOAD") else "OK"

    assert load_code(good) == "OK"
    assert load_code(good[: len(good) // 2]) == "-1"
    assert load_code(b"XXXX" + good[4:]) == "-2"
    assert load_code(good[:4] + struct.pack("<I", 9) + good[8:]) == "-3"
    flipped = bytearray(good)
    flipped[-100] ^= 0xFF
    assert load_code(bytes(flipped)) == "-4"

    dims = np.array(read_blob(good).tensors["cfg.dims"])
    cases = {
        "missing tensor": dict(l1__q__b=None),
        "wrong shape": dict(l0__q__w=np.zeros((128, 64), np.int8)),
        "wrong dtype": dict(l0__q__b=np.zeros(128, np.int16)),
        "shift out of range": dict(l0__q__sh=np.full(128, 40, np.int8)),
        "bad exp table": dict(exp__lo=np.full(256, 20000, np.int16)),
        "too many layers": dict(cfg__dims=np.where(np.arange(8) == 5, 99, dims).astype(np.int32)),
    }
    for what, change in cases.items():
        assert load_code(_mutated(random_blob, tmp_path, **change).read_bytes()) == "-5", what
    spec3 = np.where(np.arange(8) == 0, 3, dims).astype(np.int32)
    assert load_code(_mutated(random_blob, tmp_path, cfg__dims=spec3).read_bytes()) == "-3"


def test_engine_refuses_malformed_spec2_blobs(engine, random_blob, tmp_path) -> None:
    """Spec 2's own tensors (segment bias, att_output, per-channel out.ma) are checked like the
    rest: each defect is EBQ_ERR_BLOB_TENSOR at load, never a crash or a silent spec-1 run."""
    blob = read_blob(random_blob.read_bytes())
    assert int(blob.tensors["cfg.dims"][0]) == 2 and "l0.ao.w" in blob.tensors

    def load_code(path: Path) -> str:
        out = run_engine(engine, path, ["2"])
        return out[0].split()[1] if out[0].startswith("LOAD") else "OK"

    dims = np.array(blob.tensors["cfg.dims"])
    cases = {
        "no segment bias": dict(emb__seg__b=None),
        "segment bias shape": dict(emb__seg__b=np.zeros(64, np.int32)),
        "segment bias out of range": dict(emb__seg__b=np.full(128, 2**30 + 1, np.int32)),
        "att_output weight shape": dict(l1__ao__w=np.zeros((128, 64), np.int8)),
        "att_output weight dtype": dict(l1__ao__w=np.zeros((128, 128), np.int16)),
        "no att_output bias": dict(l2__ao__b=None),
        "att_output bias out of range": dict(l0__ao__b=np.full(128, -(2**30) - 1, np.int32)),
        "no context rq": dict(l0__ctx__m=None),
        "context shift": dict(l3__ctx__sh=np.full(1, 32, np.int8)),
        "scalar out.ma with att_output": dict(l0__out__ma=np.ones(1, np.int32),
                                              l0__out__sha=np.ones(1, np.int8)),
        "att_output dropped, out.ma per channel": dict(l0__ao__w=None),
        "spec 1 with spec 2 tensors": dict(cfg__dims=np.where(np.arange(8) == 0, 1, dims)
                                           .astype(np.int32)),
    }
    for what, change in cases.items():
        assert load_code(_mutated(random_blob, tmp_path, **change)) == "-5", what


def test_engine_is_integer_only_and_allocation_free(tmp_path) -> None:
    """Contract 2: no float or double in the engine sources, and the Cortex-M4 objects (soft
    float ABI, portable and DSP kernels) call no float helper, no libm and no allocator."""
    srcs = [FW / "src" / "model.c", FW / "src" / "forward.c",
            *sorted((FW / "src" / "ops").rglob("*.c")), *sorted((FW / "src" / "ops").rglob("*.h")),
            ROOT / "firmware" / "include" / "ebq_model.h"]
    for p in srcs:
        code = re.sub(r"/\*.*?\*/|//[^\n]*", "", p.read_text(), flags=re.S)  # comments may say it
        assert not re.search(r"\b(float|double)\b", code), p
    arm = shutil.which("arm-none-eabi-gcc")
    if arm is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    bad = re.compile(r"__aeabi_[fd]|__aeabi_[ui]2[fd]|^(sqrt|exp|log|pow)f?$|malloc|free|_sbrk")
    for p in srcs:
        if p.suffix != ".c":
            continue
        obj = tmp_path / (p.stem + ".o")
        subprocess.run([arm, "-std=c11", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-O2",
                        "-ffreestanding", "-I", str(FW / "include"), "-I", str(FW / "src"), "-c",
                        str(p), "-o", str(obj)], check=True)
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], check=True,
                                   capture_output=True, text=True).stdout.split()
        assert not [s for s in undefined if bad.search(s)], (p, undefined)


def test_engine_rejects_inconsistent_dims(engine, random_blob, tmp_path) -> None:
    """cfg.dims that disagree with the tensors (or break the engine's limits) fail the load with
    EBQ_ERR_BLOB_TENSOR / VERSION under ASan, never a crash; a random byte flip never crashes."""
    dims = np.array(read_blob(random_blob.read_bytes()).tensors["cfg.dims"])
    rng = np.random.default_rng(11)
    for field in range(1, 8):
        for value in (0, -1, 1, 3, int(dims[field]) + 1, 2**31 - 1):
            if value == dims[field]:
                continue
            bad = dims.copy()
            bad[field] = value
            path = _mutated(random_blob, tmp_path, cfg__dims=bad.astype(np.int32))
            out = run_engine(engine, path, ["2"])
            assert out[0].startswith("LOAD -5"), (field, value, out)
    good = bytearray(random_blob.read_bytes())
    for _ in range(20):  # flips are caught by the CRC; the walk must still stay in bounds
        data = bytearray(good)
        data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
        p = tmp_path / "flip.bin"
        p.write_bytes(bytes(data))
        out = run_engine(engine, p, ["2 5 6"])
        assert out and (out[0].startswith("LOAD -") or out[0].startswith("OK")), out
