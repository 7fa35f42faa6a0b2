"""Regularisation ablations of the distilled fine-tune (issue #8): dropout, label smoothing,
early stopping (best-on-dev weights vs the last ones) and token-dropout augmentation, each with
the same budget: the same planned steps from the same (b) encoder, the same teacher soft labels.

Why this setting: it is the phase that ships (the fine-tune after representation distillation),
and at ~4 minutes a run on one core it fits several variants in the CPU budget. No early stop
(patience 0) in any variant, so every run sees the same steps; the best-on-dev checkpoint is what
`hil train` keeps, and its "last weights" row shows what early stopping on dev is worth.

    python benchmarks/distill_ablation.py --init /tmp/distill_runs2/nlu_scenario/rep/pretrained.pt
    python benchmarks/distill_ablation.py --only base,no_dropout   # two at a time, then the rest

A variant whose run directory already holds metrics.json is not rerun (delete it to redo one);
a run killed midway resumes (--resume). Writes benchmarks/results/distill_ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

#: variant -> options that differ from the base recipe (dropout 0.2, label smoothing 0.1).
VARIANTS: dict[str, list[str]] = {
    "base": [],
    "no_dropout": ["--dropout", "0"],
    "no_label_smoothing": ["--label-smoothing", "0"],
    "token_drop_0.1": ["--token-drop", "0.1"],
}


def command(name: str, work: Path, data: str, init: str, epochs: float) -> list[str]:
    """The `hil train` command of one variant (base options first; later flags win)."""
    return ["hil", "train", "--data", data, "--out", str(work / name), "--init", init,
            "--epochs", f"{epochs:g}", "--lr", "0.002", "--dropout", "0.2",
            "--label-smoothing", "0.1", "--patience", "0", "--threads", "1", "--resume",
            "--teacher", "minilm", "--transfer-docs", "0", "--transfer-weight", "0",
            *VARIANTS[name]]


def last_weights_test(run: Path) -> dict[str, float]:
    """Test (and dev) accuracy of the final weights in checkpoint.pt: training without early
    stopping / best-on-dev selection."""
    import torch

    from hil.model import data as D
    from hil.model.embbert import EmbBERT, EmbBERTConfig
    from hil.model.train import evaluate
    from hil.quant.tokenizer import Tokenizer

    meta = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    model = EmbBERT(EmbBERTConfig.from_dict(meta["config"]))
    model.load_state_dict(ck["model"])
    tok = Tokenizer.from_file(run / "tokenizer.json")
    ds = D.load_dataset(meta["dataset"])
    assert ds.test is not None
    out = {}
    for split in ("dev", "test"):
        s = getattr(ds, split)
        out[split] = evaluate(model, D.encode(tok, s.texts, meta["max_len"]), s.labels).accuracy
    return out


def row(name: str, run: Path, cmd: list[str]) -> dict[str, Any]:
    m = json.loads((run / "metrics.json").read_text())
    hist = m["history"]
    return {"variant": name, "run": str(run), "command": " ".join(map(shlex.quote, cmd)),
            "steps": m["steps"], "train_min": round(m["elapsed_s"] / 60, 2),
            "best_step": m["best_step"], "dev_acc": m["dev"]["accuracy"],
            "test_acc": m["test"]["accuracy"], "test_macro_f1": m["test"]["macro_f1"],
            "final_train_acc": hist[-1]["train_acc"] if hist else None,
            "last": last_weights_test(run)}


def markdown(rows: list[dict[str, Any]], setting: str) -> str:
    lines = ["# Regularisation ablations (benchmarks/distill_ablation.py)", "", setting, "",
             "| variant | dev (best) | test (best-on-dev weights) | test (last weights, no early "
             "stopping) | train acc, last epoch | best step / steps | minutes |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['dev_acc']:.4f} | {r['test_acc']:.4f} | "
                     f"{r['last']['test']:.4f} | {r['final_train_acc']:.4f} | "
                     f"{r['best_step']} / {r['steps']} | {r['train_min']} |")
    lines += ["", "Commands:", ""] + [f"- {r['variant']}: `{r['command']}`" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="nlu_scenario")
    p.add_argument("--init", required=True, help="the (b) encoder every variant starts from")
    p.add_argument("--work", default="/tmp/distill_runs2/ablation")
    p.add_argument("--epochs", type=float, default=12)
    p.add_argument("--only", default="", help="comma-separated variants (default: all)")
    p.add_argument("--no-run", action="store_true", help="only tabulate finished runs")
    a = p.parse_args(argv)
    work = Path(a.work)
    names = a.only.split(",") if a.only else list(VARIANTS)
    path = RESULTS / "distill_ablation.json"
    saved = json.loads(path.read_text()) if path.exists() else {"rows": []}
    rows = {r["variant"]: r for r in saved["rows"]}
    for name in names:
        cmd = command(name, work, a.data, a.init, a.epochs)
        run = work / name
        if not (run / "metrics.json").exists():
            if a.no_run:
                continue
            subprocess.run(["nice", *cmd], check=True)
        rows[name] = row(name, run, cmd)
        print(json.dumps({k: rows[name][k] for k in ("variant", "dev_acc", "test_acc", "last")}),
              flush=True)
    ordered = [rows[n] for n in VARIANTS if n in rows]
    setting = (f"Dataset {a.data}; every variant fine-tunes the same (b) encoder (`{a.init}`) "
               f"for {a.epochs:g} epochs (the same steps for every variant) with the teacher's "
               "soft labels (alpha 0.7, T 2), lr 2e-3, one torch thread, beside one other "
               "training job on 2 shared cores (so the minutes vary with the load, not the "
               "variant). Base recipe: dropout 0.2, label smoothing 0.1, best-on-dev checkpoint. "
               "Test read once per run; choices are made on dev.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"setting": setting, "rows": ordered}, indent=1))
    (RESULTS / "distill_ablation.md").write_text(markdown(ordered, setting))
    print(markdown(ordered, setting))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
