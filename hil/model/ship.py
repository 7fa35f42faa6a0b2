"""Turn a training run into a shipped model: hil/models/<name>/{model.pt, tokenizer.json, card.md}.

Why a step of its own: the shipped model.pt carries the numbers a test re-checks (accuracy on a
fixed slice of the test split, recorded as a count of correct answers so the check is exact) and
the card records everything needed to repeat the run (data, split, exact command, seed).

Shipping comes last (docs/model-selection.md): the run's test split must have been read by
`hil model test`, whose record (RUN/test_reads.jsonl) gives the card its test numbers, and whose
JSON over all seeds (`--seeds`) gives the mean ± sd the card leads with.
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


def recorded_test(run: Path) -> dict[str, Any]:
    """The first test read of the run's weights (hil model test); UsageError if there is none."""
    from hil.errors import UsageError
    from hil.model.testread import LEDGER, earlier_reads, weights_hash

    reads = earlier_reads(run, weights_hash(run / "model.pt"))
    if not reads:
        raise UsageError(f"{run}: its test split has not been read: run `hil model test {run}` "
                         f"(with the other seeds) first; it records the read in {LEDGER}")
    return reads[0]


def ship(run_dir: str | Path, name: str, notes: str = "", dest: Path = MODELS_DIR,
         seeds: dict[str, Any] | None = None) -> Path:
    """Copy a run's best model into dest/<name>, record slice metrics and write card.md."""
    from hil.model.testread import LEDGER

    run = Path(run_dir)
    test = recorded_test(run)
    out = dest / name
    out.mkdir(parents=True, exist_ok=True)
    ck = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    ck.setdefault("metrics", {})["test_read"] = test
    if seeds is not None:
        ck["seeds"] = seeds
    metrics = json.loads((run / "metrics.json").read_text())
    shutil.copyfile(run / "tokenizer.json", out / "tokenizer.json")
    shutil.copyfile(run / LEDGER, out / LEDGER)
    keep = {k: ck[k] for k in ("config", "state_dict", "labels", "dataset", "max_len",
                               "metrics", "train_args", "dev_source", "best_step", "seeds")
            if k in ck}
    torch.save(keep, out / "model.pt")
    keep["slice"] = slice_metrics(out / "model.pt")
    torch.save(keep, out / "model.pt")
    (out / "card.md").write_text(card(name, keep, metrics, notes))
    return out


def card(name: str, ck: dict[str, Any], metrics: dict[str, Any], notes: str) -> str:
    """The model card: what it was trained on, how, and how well it does."""
    args = ck.get("train_args", {})
    info = model_info(ck["config"])
    dev, sl = ck["metrics"]["dev"], ck["slice"]
    test = ck["metrics"].get("test_read") or {}
    ds = D.load_dataset(ck["dataset"], args.get("dev_fraction", 0.1), args.get("seed", 0))
    hist = metrics.get("history", [])
    lines = [
        f"# {name}: EmbBERT fine-tuned on `{ck['dataset']}`",
        "",
        f"- **Task**: {len(ck['labels'])} classes: {', '.join(ck['labels'])}",
        f"- **Data**: `{ck['dataset']}` (`hil data fetch {ck['dataset']}`; source and licence: "
        f"`hil data list`); train {len(ds.train):,}, dev {len(ds.dev):,} "
        f"({ck.get('dev_source', 'dev')}), "
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
        lines.append(f"| **test**, read once ({test['utc']}, commit {test['commit'][:12]}) | "
                     f"{test['sentences']} | fp32 **{test['acc_fp32'] / 100:.4f}**"
                     + (f", int8 **{test['acc_int8'] / 100:.4f}**" if "acc_int8" in test else "")
                     + " | |")
    lines += [
        f"| test, 1 text in {sl['stride']} (checked by tests/test_model_shipped.py) | "
        f"{sl['n']} | "
        f"{sl['accuracy']:.4f} ({sl['correct']} correct) | {sl['macro_f1']:.4f} |",
        "",
        f"- **Size**: {info['params']:,} parameters; weights {info['weights_fp32_bytes']:,} B "
        f"fp32, ~{info['weights_int8_bytes']:,} B int8 (estimate; the blob has the exact bytes); "
        f"activation peak at T={info['seq_len']}: {info['activations_fp32_bytes']:,} B fp32, "
        f"{info['activations_int8_bytes']:,} B int8 (`hil model info {name}`; the paper's "
        "accounting beside ours and the measured flash and RAM: docs/memory.md).",
        "- **Files**: `model.pt` = {config, state_dict, labels, dataset, max_len, metrics, "
        "train_args, slice}; `tokenizer.json` = the shipped WordPiece tokenizer.",
        "- **Reproduce the numbers**: `hil evaluate " + name + "`.",
    ]
    if ck.get("seeds"):
        lines += ["", *seed_lines(ck["seeds"])]
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"


def seed_lines(seeds: dict[str, Any]) -> list[str]:
    """The seed table of `hil model test --json`: every seed, then the mean ± sd (the number
    this model is judged by), with the shipped seed (best dev) marked."""
    s = seeds["summary"]
    has8 = "acc_int8" in s
    out = ["## Test accuracy over seeds (expected value, docs/model-selection.md)", "",
           "| run | dev | test fp32 | test int8 |" if has8 else "| run | dev | test fp32 |",
           "|---|---:|---:|---:|" if has8 else "|---|---:|---:|"]
    for r in seeds["runs"]:
        mark = " (shipped: best dev)" if r["chosen_on_dev"] else ""
        out.append(f"| `{Path(r['run']).name}`{mark} | {100 * r['dev_accuracy']:.2f} | "
                   f"{r['acc_fp32']:.2f} |" + (f" {r['acc_int8']:.2f} |" if has8 else ""))
    out.append(f"| **mean ± sd** ({s['n_runs']} seeds) | | **{s['acc_fp32']['mean']:.2f} ± "
               f"{s['acc_fp32']['sd']:.2f}** |" + (f" **{s['acc_int8']['mean']:.2f} ± "
                                                  f"{s['acc_int8']['sd']:.2f}** |" if has8 else ""))
    if has8:
        out += ["", f"int8 drop against fp32: {s['drop_points']['mean']:+.2f} points on the mean."]
    return out


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
