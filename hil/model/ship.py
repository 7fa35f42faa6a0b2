"""Turn a training run into a shipped model: hil/models/<name>/{model.pt, tokenizer.json, card.md}.

Why a step of its own: the shipped model.pt carries the numbers a test re-checks (accuracy on a
fixed slice of the test split, recorded as a count of correct answers so the check is exact) and
the card records everything needed to repeat the run (data, split, exact command, seed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from hil.model import data as D
from hil.model.info import model_info
from hil.model.train import evaluate, load_model
from hil.paths import MODELS_DIR
from hil.quant.tokenizer import Tokenizer

SLICE = 300  # about N test texts (a fixed stride): what tests/test_model_shipped.py re-evaluates


def slice_metrics(model_pt: Path, n: int = SLICE) -> dict[str, Any]:
    """Accuracy of a model.pt on a fixed slice of its test split: every k-th text, k chosen so
    that about `n` texts are taken. A stride rather than the first n, because some test splits
    are in source order (grouped by class) and a prefix would see only a few classes."""
    model, meta = load_model(model_pt)
    tok = Tokenizer.from_file(model_pt.parent / "tokenizer.json")
    ds_dir = D.resolve_dataset(meta["dataset"])
    split = D.read_split(D.find_split(ds_dir, "test"), meta["labels"])  # type: ignore[arg-type]
    stride = max(1, -(-len(split) // n))
    texts, labels = split.texts[::stride], split.labels[::stride]
    m = evaluate(model, D.encode(tok, texts, meta["max_len"]), labels)
    return {"split": "test", "stride": stride, "n": len(texts),
            "correct": round(m.accuracy * len(texts)), "accuracy": m.accuracy,
            "macro_f1": m.macro_f1}


def ship(run_dir: str | Path, name: str, notes: str = "", dest: Path = MODELS_DIR
         ) -> Path:
    """Copy a run's best model into dest/<name>, record slice metrics and write card.md."""
    run = Path(run_dir)
    out = dest / name
    out.mkdir(parents=True, exist_ok=True)
    ck = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    metrics = json.loads((run / "metrics.json").read_text())
    shutil.copyfile(run / "tokenizer.json", out / "tokenizer.json")
    keep = {k: ck[k] for k in ("config", "state_dict", "labels", "dataset", "max_len",
                               "metrics", "train_args", "dev_source", "best_step") if k in ck}
    torch.save(keep, out / "model.pt")
    keep["slice"] = slice_metrics(out / "model.pt")
    torch.save(keep, out / "model.pt")
    (out / "card.md").write_text(card(name, keep, metrics, notes))
    return out


def card(name: str, ck: dict[str, Any], metrics: dict[str, Any], notes: str) -> str:
    """The model card: what it was trained on, how, and how well it does."""
    args = ck.get("train_args", {})
    info = model_info(ck["config"])
    test, dev, sl = ck["metrics"].get("test", {}), ck["metrics"]["dev"], ck["slice"]
    ds = D.load_dataset(ck["dataset"], args.get("dev_fraction", 0.1), args.get("seed", 0))
    hist = metrics.get("history", [])
    lines = [
        f"# {name}: EmbBERT fine-tuned on `{ck['dataset']}`",
        "",
        f"- **Task**: {len(ck['labels'])} classes: {', '.join(ck['labels'])}",
        f"- **Data**: `../shared/datasets/{ck['dataset']}` (see its README for source and "
        f"licence); train {len(ds.train):,}, dev {len(ds.dev):,} ({ck.get('dev_source', 'dev')}), "
        f"test {len(ds.test) if ds.test else 0:,}.",
        f"- **Command**: `{args.get('command', '?')}`",
        f"- **Seed**: {args.get('seed')}; max_len {ck['max_len']} tokens ([CLS] included); "
        f"dropout {args.get('dropout')}; label smoothing {args.get('label_smoothing')}; lr "
        f"{args.get('lr')} (AdamW, warmup {args.get('warmup')}, cosine); batch "
        f"{args.get('batch_size')}; weight decay {args.get('weight_decay')}"
        + (f"; encoder initialised from `{args['init']}`" if args.get("init") else
           "; trained from scratch (no pretraining)") + ".",
        f"- **Run**: {metrics.get('steps')} steps in {metrics.get('elapsed_s', 0) / 60:.1f} min "
        f"on 2 shared CPU cores; stopped: {metrics.get('stopped')}; best dev at step "
        f"{ck.get('best_step')} ({len(hist)} dev evaluations).",
        "",
        "| split | n | accuracy | macro-F1 |",
        "|---|---:|---:|---:|",
        f"| dev | {dev['n']} | {dev['accuracy']:.4f} | {dev['macro_f1']:.4f} |",
    ]
    if test:
        lines.append(f"| **test** | {test['n']} | **{test['accuracy']:.4f}** | "
                     f"**{test['macro_f1']:.4f}** |")
    lines += [
        f"| test, 1 text in {sl['stride']} (checked by tests/test_model_shipped.py) | "
        f"{sl['n']} | "
        f"{sl['accuracy']:.4f} ({sl['correct']} correct) | {sl['macro_f1']:.4f} |",
        "",
        f"- **Size**: {info['params']:,} parameters; weights {info['weights_fp32_bytes']:,} B "
        f"fp32, ~{info['weights_int8_bytes']:,} B int8 (estimate; the blob has the exact bytes); "
        f"activation peak at T={info['seq_len']}: {info['activations_fp32_bytes']:,} B fp32, "
        f"{info['activations_int8_bytes']:,} B int8 (`hil model info {name}`).",
        "- **Files**: `model.pt` = {config, state_dict, labels, dataset, max_len, metrics, "
        "train_args, slice}; `tokenizer.json` = the shipped WordPiece tokenizer.",
        "- **Reproduce the numbers**: `hil evaluate " + name + "`.",
    ]
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """python -m hil.model.ship RUN_DIR NAME [--notes FILE]"""
    import argparse

    p = argparse.ArgumentParser(description=ship.__doc__)
    p.add_argument("run_dir")
    p.add_argument("name")
    p.add_argument("--notes", help="markdown file appended to the card")
    a = p.parse_args(argv)
    notes = Path(a.notes).read_text() if a.notes else ""
    out = ship(a.run_dir, a.name, notes)
    print((out / "card.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
