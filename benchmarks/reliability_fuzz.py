"""Fuzz the device's entry points with libFuzzer (clang, ASan + UBSan) and record the runs.

Why: the device must survive any byte sequence on its UART (docs/protocol.md); random tests
only sample that space, a coverage-guided fuzzer searches it. Targets, one per entry point:

  fuzz_proto      src/proto.c frame parser + percent/id decoders + writer round trip
  fuzz_proto_app  app/main.c request handling with the real engine and the shipped blob
  fuzz_tokenizer  src/tokenizer.c with the shipped model's vocabulary
  fuzz_blob       src/blob.c on mutated blobs

Seeds are real frames (firmware/tests/corpus/seed/, written by `seed_frames`). After each run the
working corpus is minimised (`-merge=1`) into firmware/tests/corpus/<target>/, the regression
corpus tests/test_fuzz_proto.py replays without libFuzzer. A crash, leak, timeout (-timeout) or
sanitizer report makes libFuzzer exit non-zero and leave a crash-* file: both are recorded.

    python benchmarks/reliability_fuzz.py                       # default budgets
    python benchmarks/reliability_fuzz.py --runs fuzz_proto=2000000 --targets fuzz_proto
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FW = ROOT / "firmware"
CORPUS = FW / "tests" / "corpus"
MODEL = ROOT / "hil" / "models" / "nlu_scenario" / "model.bin"
RESULTS = ROOT / "benchmarks" / "results"
BUILD = FW / "build" / "fuzz"
FLAGS = ["-g", "-O1", "-std=c11", "-Wall", "-Wextra", "-Werror",
         "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all", f"-I{FW / 'include'}"]
DEFAULT_RUNS = {"fuzz_proto": 2_000_000, "fuzz_proto_app": 100_000, "fuzz_tokenizer": 500_000,
                "fuzz_blob": 500_000}


def engine_sources() -> list[str]:
    """The portable engine (no DSP twins: the host has no Cortex-M4 DSP instructions)."""
    return sorted(str(p) for p in (FW / "src").rglob("*.c") if "dsp" not in p.parts)


def sources(target: str) -> tuple[list[str], list[str]]:
    """(source files, extra flags) for one target."""
    src = str(FW / "tests" / f"{target}.c")
    if target == "fuzz_proto":
        return [str(FW / "src" / "proto.c"), src], []
    if target == "fuzz_proto_app":
        return ([*engine_sources(), str(FW / "app" / "model_blob.S"), src],
                ["-DEBQ_ARENA_BYTES=1048576", "-DEBQ_DSP=0", f'-DEBQ_MODEL_FILE="{MODEL}"'])
    return [str(FW / "src" / "blob.c"), str(FW / "src" / "tokenizer.c"), src], []


def build(target: str) -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    exe = BUILD / target
    srcs, extra = sources(target)
    cmd = ["clang", *FLAGS, *extra, *srcs, "-o", str(exe)]
    subprocess.run(cmd, check=True)
    return exe


def seed_frames(dest: Path) -> int:
    """Real frames as the host sends them (every request type, the scenario's sentences, ids),
    plus the damaged shapes the link produces (cut, bad CRC, noise, over-long, bad UTF-8)."""
    from hil.protocol import classify_payload, encode_frame, ids_payload
    from hil.scenario import load_scenario

    dest.mkdir(parents=True, exist_ok=True)
    texts = [s.text for s in load_scenario("nlu_scenario").load_sentences()[:24]]
    frames = [encode_frame(i + 1, "CLASSIFY", classify_payload(t)) for i, t in enumerate(texts)]
    good = frames[0]
    frames += [
        encode_frame(1, "HELLO"), encode_frame(2, "STATS"), encode_frame(3, "RESET"),
        encode_frame(4, "IDS", ids_payload([2, 100, 200, 300])), encode_frame(5, "IDS", "ids="),
        encode_frame(6, "IDS", ids_payload([99999])), encode_frame(7, "CLASSIFY", ""),
        encode_frame(8, "CLASSIFY", classify_payload(b"\xff\xfe bad utf8 \xc3")),
        encode_frame(9, "CLASSIFY", classify_payload("é 日本 😀")),
        encode_frame(10, "CLASSIFY", classify_payload("word " * 500)),
        encode_frame(11, "RESULT", "label=1"), encode_frame(12, "CLASSIFY", "%G1 bad escape"),
        good[: len(good) // 2] + encode_frame(13, "HELLO"),
        good[:-4] + b"0000\n", b"\x00\xff noise $$$ \n" + good,
        b"$" + b"A" * 2700 + b"\n" + good, good.replace(b"\n", b"\r\n"),
    ]
    for i, f in enumerate(frames):
        (dest / f"frame{i:03d}").write_bytes(f)
    return len(frames)


def tokenizer_seeds(dest: Path) -> None:
    """The tokenizer entry takes byte 0 as max_ids, the rest as text."""
    from hil.scenario import load_scenario

    dest.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(load_scenario("nlu_scenario").load_sentences()[:40]):
        (dest / f"text{i:03d}").write_bytes(bytes([64]) + s.text.encode())


def blob_seeds(dest: Path) -> None:
    """Small valid blobs (a vocabulary blob and a tensor blob, as tests/test_blob_fuzz.py makes):
    random bytes almost never pass the magic and CRC, valid blobs let mutations reach the table
    and vocabulary checks (fuzz_blob re-stamps the CRC of each input too)."""
    import numpy as np

    from hil.quant import blob as B
    from hil.quant import vocab as V

    dest.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[MASK]", "[SEP]", "a", "ab", "b", "un", "##a", "##b",
             "##ble", "\u00e9", "##\u00e9", ".", "\u65e5", "##\u672c"]
    (dest / "vocab").write_bytes(B.write_blob(V.vocab_tensors(vocab), meta={"m": 1}))
    (dest / "tensors").write_bytes(B.write_blob({"cfg.dims": np.arange(4, dtype=np.int32),
                                                 "w": np.ones((2, 3), np.int8)}))


def fuzz(target: str, runs: int, max_time: int) -> dict[str, Any]:
    exe = build(target)
    work = Path(tempfile.mkdtemp(prefix=f"{target}-"))
    corpus = work / "corpus"
    corpus.mkdir()
    regress = CORPUS / target
    seeds = [regress] if regress.is_dir() else []
    if target in ("fuzz_proto", "fuzz_proto_app"):
        seeds.append(CORPUS / "seed")
    elif target == "fuzz_tokenizer":
        tokenizer_seeds(work / "tokseed")
        seeds.append(work / "tokseed")
    elif target == "fuzz_blob":
        blob_seeds(work / "blobseed")
        seeds.append(work / "blobseed")
    env = {**os.environ, "EBQ_FUZZ_VOCAB": str(MODEL),
           "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1"}
    cmd = [str(exe), f"-runs={runs}", f"-max_total_time={max_time}", "-timeout=10",
           "-rss_limit_mb=2048", "-print_final_stats=1", f"-artifact_prefix={work}/",
           str(corpus), *map(str, seeds)]
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    secs = time.time() - t0
    log = res.stderr
    (work / "fuzz.log").write_text(log)
    done = re.findall(r"Done (\d+) runs", log)
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    artifacts = sorted(p.name for p in work.iterdir()
                       if p.name.startswith(("crash-", "leak-", "timeout-", "oom-")))
    # Minimise what the run found (plus the old regression corpus) into the committed one.
    if res.returncode == 0:
        merged = work / "merged"
        merged.mkdir()
        subprocess.run([str(exe), "-merge=1", str(merged), str(corpus), *map(str, seeds)],
                       capture_output=True, env=env, check=True)
        if regress.is_dir():
            shutil.rmtree(regress)
        shutil.copytree(merged, regress)
    return {
        "target": target, "command": " ".join(cmd[:1] + cmd[1:4]),
        "executions": int(execs[-1]) if execs else int(done[-1]) if done else None,
        "seconds": round(secs, 1), "exit_code": res.returncode,
        "coverage": {"cov": int(cov[-1][0]), "ft": int(cov[-1][1])} if cov else None,
        "findings": artifacts, "sanitizer_reports": log.count("ERROR: AddressSanitizer")
        + log.count("runtime error:") + log.count("ERROR: LeakSanitizer"),
        "regression_corpus_files": len(list(regress.iterdir())) if regress.is_dir() else 0,
        "log": str(work / "fuzz.log"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", nargs="+", default=list(DEFAULT_RUNS))
    p.add_argument("--runs", nargs="*", default=[], help="target=N overrides")
    p.add_argument("--max-time", type=int, default=900, help="seconds per target at most")
    args = p.parse_args()
    if shutil.which("clang") is None:
        print("reliability_fuzz: clang (with libclang-rt) is needed for libFuzzer", file=sys.stderr)
        return 2
    runs = dict(DEFAULT_RUNS)
    for kv in args.runs:
        k, _, v = kv.partition("=")
        runs[k] = int(v)
    n_seeds = seed_frames(CORPUS / "seed")
    out_path = RESULTS / "reliability_fuzz.json"
    old = json.loads(out_path.read_text()) if out_path.is_file() else {}
    data: dict[str, Any] = {"seed_frames": n_seeds, "targets": old.get("targets", {})}
    for t in args.targets:
        r = fuzz(t, runs[t], args.max_time)
        data["targets"][t] = r
        print(json.dumps(r), flush=True)
    data["command"] = "python benchmarks/reliability_fuzz.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(data, indent=2) + "\n")
    bad = [t for t, r in data["targets"].items() if r["exit_code"] or r["findings"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
