"""Replay the committed fuzz corpora without libFuzzer: every input libFuzzer kept (minimised, in
firmware/tests/corpus/<target>/) plus the seed frames runs through the same entry points built
with gcc, ASan and UBSan (-DEBQ_FUZZ_STANDALONE, as tests/test_blob_fuzz.py does).

Why: a fuzzing session is long and needs clang's libFuzzer; its findings and coverage must keep
protecting the code in every ordinary pytest run. A regression (crash, sanitizer report, a broken
invariant: an input frame without exactly one answer, an answer with a bad CRC, a good HELLO
refused after noise) fails here in seconds. benchmarks/reliability_fuzz.py refreshes the corpora.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
CORPUS = FW / "tests" / "corpus"
BUILD = FW / "build" / "host-tests"
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
CFLAGS = ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-DEBQ_FUZZ_STANDALONE", f"-I{FW / 'include'}"]


def sources(target: str) -> tuple[list[Path], list[str]]:
    src = FW / "tests" / f"{target}.c"
    if target == "fuzz_proto":
        return [FW / "src" / "proto.c", src], []
    if target == "fuzz_proto_app":
        engine = sorted(p for p in (FW / "src").rglob("*.c") if "dsp" not in p.parts)
        return ([*engine, FW / "app" / "model_blob.S", src],
                ["-DEBQ_ARENA_BYTES=1048576", "-DEBQ_DSP=0", f'-DEBQ_MODEL_FILE="{MODEL}"'])
    return [FW / "src" / "blob.c", FW / "src" / "tokenizer.c", src], []


def build(target: str) -> Path:
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("no host C compiler (gcc)")
    if target == "fuzz_proto_app" and not MODEL.is_file():
        pytest.skip("no shipped nlu_scenario model")
    BUILD.mkdir(parents=True, exist_ok=True)
    exe = BUILD / f"{target}_standalone"
    srcs, extra = sources(target)
    deps = [*srcs, FW / "app" / "main.c", FW / "tests" / "blob_fuzz_main.h",
            *(FW / "include").glob("*.h")]
    if not exe.exists() or any(p.stat().st_mtime > exe.stat().st_mtime for p in deps):
        cmd = [cc, *CFLAGS, *extra, *map(str, srcs), "-o", str(exe)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return exe


def replay(exe: Path, inputs: list[bytes], env: dict[str, str] | None = None) -> None:
    import os

    stdin = b"".join(struct.pack("<I", len(x)) + x for x in inputs)
    res = subprocess.run([str(exe)], input=stdin, capture_output=True, timeout=300,
                         env={**os.environ, **(env or {})})
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-4000:]
    assert res.stdout.decode().strip() == f"fuzz ok {len(inputs)}"


def corpus(*names: str) -> list[bytes]:
    files = [p for n in names if (CORPUS / n).is_dir() for p in sorted((CORPUS / n).iterdir())]
    return [p.read_bytes() for p in files if p.is_file()]


def test_seed_corpus_is_committed() -> None:
    seeds = corpus("seed")
    assert len(seeds) >= 30 and any(b" CLASSIFY " in s for s in seeds)


@pytest.mark.parametrize("target", ["fuzz_proto", "fuzz_proto_app"])
def test_replay_protocol_corpus(target: str) -> None:
    """Seeds and the minimised regression corpus through the parser / the whole app."""
    inputs = corpus("seed", target)
    inputs += [b"", b"$", b"\n", b"$" * 5000, b"\xff" * 3000 + b"\n"]
    replay(build(target), inputs)


@pytest.mark.parametrize("target", ["fuzz_tokenizer", "fuzz_blob"])
def test_replay_engine_corpus(target: str) -> None:
    """The tokenizer (shipped vocabulary) and blob reader corpora kept by libFuzzer."""
    inputs = corpus(target)
    if not inputs:
        pytest.skip(f"no committed corpus for {target} (run benchmarks/reliability_fuzz.py)")
    env = {"EBQ_FUZZ_VOCAB": str(MODEL)} if target == "fuzz_tokenizer" else None
    replay(build(target), inputs, env)
