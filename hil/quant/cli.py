"""`hil quantize`: fp32 checkpoint -> integer model blob (docs/int8-spec.md).

torch is imported inside the handler only (through hil.quant.quantize), so `hil --help` and the
commands that only run firmware work without the [train] extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hil import progress
from hil.model.cli import needs_datasets
from hil.paths import MODELS_DIR, find_model


def _model_dir(name_or_path: str) -> Path:
    """A directory holding model.pt, a model.pt file, or a shipped model's name."""
    return find_model(name_or_path, "model.pt").parent


def shipped_models() -> list[Path]:
    """Every hil/models/<name>/ that holds a model.pt."""
    return sorted(d for d in MODELS_DIR.iterdir() if (d / "model.pt").is_file())


def quantize_one(model_dir: Path, out: Path, calib: int, method: str, check: int,
                 workers: int = 1) -> dict:
    """Quantize one checkpoint, write its blob, optionally check accuracy on the test split."""
    from hil.quant.blob import read_blob
    from hil.quant.quantize import blob_bytes, compare_on_split, quantize_checkpoint

    qm = quantize_checkpoint(model_dir, calib_count=calib, method=method, workers=workers)
    data = blob_bytes(qm)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    info = {"model": model_dir.name, "out": str(out), "bytes": len(data),
            "model_id": f"{read_blob(data).model_id:08x}", "calibration": qm.meta["calibration"]}
    if check:
        info.update(compare_on_split(model_dir, qm, limit=check, workers=workers))
    return info


def cmd_quantize(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401  (the quantizer reads the fp32 checkpoint)
    except ImportError:
        print("hil quantize: needs torch (pip install -e '.[train]'); running firmware does not",
              file=sys.stderr)
        return 2
    targets: list[tuple[Path, Path]] = []
    if args.all:
        targets = [(d, d / "model.bin") for d in shipped_models()]
        if not targets:
            print("hil quantize: no hil/models/<name>/model.pt to quantize", file=sys.stderr)
            return 1
    else:
        if args.model is None:
            print("hil quantize: give --model NAME|DIR or --all", file=sys.stderr)
            return 2
        d = _model_dir(args.model)
        targets = [(d, Path(args.out) if args.out else d / "model.bin")]
    shipped = [out for _, out in targets if out.is_file()
               and out.resolve().is_relative_to(MODELS_DIR.resolve())]
    if shipped and not args.force:
        print(f"hil quantize: would overwrite the shipped blob(s) {', '.join(map(str, shipped))} "
              f"(the firmware and the tests use them); pass --force, or --out FILE",
              file=sys.stderr)
        return 2
    for i, (model_dir, out) in enumerate(targets, 1):
        progress.step(f"quantizing {model_dir.name} ({i}/{len(targets)})")
        info = quantize_one(model_dir, out, args.calib, args.method, args.check, args.workers)
        print(json.dumps(info, sort_keys=True))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `hil quantize` on the top-level parser."""
    p = sub.add_parser(
        "quantize", help="post-training int8 quantization of a checkpoint into a model blob",
        description="Calibrate static int8 activation scales on training sentences, quantize "
                    "weights per output channel, fold every float factor into fixed-point "
                    "multipliers and write the model blob (docs/int8-spec.md). "
                    "`hil quantize --all` regenerates every shipped hil/models/*/model.bin.")
    p.add_argument("--model", help="shipped model name, model dir or model.pt")
    p.add_argument("--out", help="blob path (default: <model dir>/model.bin)")
    p.add_argument("--all", action="store_true", help="every shipped model -> its model.bin")
    p.add_argument("--force", action="store_true",
                   help="overwrite a shipped hil/models/<name>/model.bin")
    p.add_argument("--calib", type=int, default=1000, help="calibration sentences (train split)")
    p.add_argument("--method", default="auto",
                   help="activation clip: auto (default: of mse, max, p99.99, p99.9 the one "
                        "whose int8 model is most accurate on the model's dev split), or force "
                        "mse, max or pNN.NN (percentile)")
    p.add_argument("--check", type=int, default=0, metavar="N",
                   help="also compare fp32 and int8 accuracy on N test sentences")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="processes for the integer reference (calibration choice and --check); "
                        "the blob does not depend on it")
    p.set_defaults(func=needs_datasets(cmd_quantize))  # calibration reads the train split
