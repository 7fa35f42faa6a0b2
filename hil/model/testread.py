"""`hil model test`: the one command that reads a test split, once, and records that it did.

Why a command of its own (docs/model-selection.md): a test score printed during training is a
score someone will select on. Training and `hil train` report dev only; the test split is read
here, after the choice is final, for every seed of the final recipe at once. Each read appends a
line to `test_reads.jsonl` in the run's folder (UTC time, commit, a hash of the weights, the
numbers), and a second read of the same weights is refused unless `--again`, which is recorded
too. The line says which run dev chose, decided before the test split is opened.

Numbers: fp32 (torch) and int8 (the integer reference on the quantized model, calibration
chosen on dev by `hil quantize`'s auto method) accuracy on the whole test split, and over the
runs the mean and the sample standard deviation (ddof 1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from hil.errors import UsageError

LEDGER = "test_reads.jsonl"


def weights_hash(model_pt: Path) -> str:
    """sha256 over the state_dict's names and bytes: the same weights give the same hash, however
    often the file around them is re-saved (ship adds entries to model.pt)."""
    import torch

    sd = torch.load(model_pt, map_location="cpu", weights_only=False)["state_dict"]
    h = hashlib.sha256()
    for name in sorted(sd):
        h.update(name.encode())
        h.update(sd[name].detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def commit() -> str:
    """The checkout's commit (with '+dirty' for uncommitted changes), or '' outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    return rev + ("+dirty" if dirty.strip() else "")


def earlier_reads(run: Path, digest: str) -> list[dict[str, Any]]:
    """The ledger lines of `run` for these weights."""
    f = run / LEDGER
    if not f.is_file():
        return []
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("weights_sha256") == digest]


def dev_accuracy(run: Path) -> float:
    """The run's best dev accuracy as training recorded it (metrics.json, or model.pt's)."""
    m = run / "metrics.json"
    if m.is_file():
        return float(json.loads(m.read_text())["dev"]["accuracy"])
    import torch

    ck = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    return float(ck["metrics"]["dev"]["accuracy"])


def chosen_on_dev(runs: list[Path]) -> Path:
    """The run to ship: best dev accuracy; a tie goes to the first run given (the protocol lists
    seeds in increasing order). Decided before the test split is opened."""
    return max(runs, key=lambda r: (dev_accuracy(r), -runs.index(r)))


def read_one(run: Path, int8: bool, workers: int, data: str | None = None) -> dict[str, Any]:
    """fp32 and int8 accuracy of one run on its whole test split (`data`: another folder holding
    the run's dataset; the default is the dataset named in the checkpoint)."""
    from hil.model import data as D
    from hil.quant.quantize import load_checkpoint, predict_fp32, predict_int8, tokenizer_for

    model, ck = load_checkpoint(run)
    split_file = D.find_split(D.resolve_dataset(data or ck["dataset"]), "test")
    if split_file is None:
        raise UsageError(f"{run}: its dataset has no test split")
    split = D.read_split(split_file, ck["labels"])
    tok = tokenizer_for(run)
    seqs = [tok.encode(t, max_len=model.cfg.max_len) for t in split.texts]
    y = np.asarray(split.labels)
    fp = predict_fp32(model, seqs)
    row: dict[str, Any] = {"split": "test", "sentences": len(seqs),
                           "correct_fp32": int((fp == y).sum()),
                           "acc_fp32": round(float((fp == y).mean() * 100), 2)}
    if int8:
        from hil.quant.quantize import quantize_checkpoint

        q8 = predict_int8(quantize_checkpoint(run, workers=workers), seqs, workers,
                          desc="int8 on test")
        row.update(correct_int8=int((q8 == y).sum()),
                   acc_int8=round(float((q8 == y).mean() * 100), 2),
                   agreement=round(float((fp == q8).mean() * 100), 2))
        row["drop_points"] = round(row["acc_fp32"] - row["acc_int8"], 2)
    return row


def test_runs(runs: list[Path], int8: bool = True, again: bool = False, workers: int = 1,
              data: str | None = None) -> dict[str, Any]:
    """Read test for every run (refusing weights already read unless `again`), record each read
    in its ledger, and return the per-run rows with the mean and sd over runs."""
    digests = {run: weights_hash(run / "model.pt") for run in runs}
    seen_before = {run: earlier_reads(run, dg) for run, dg in digests.items()}
    for run, seen in seen_before.items():
        if seen and not again:
            raise UsageError(f"{run}: its test split was read already for these weights, at "
                             f"{seen[0]['utc']} ({LEDGER}); a second look is a selection "
                             "risk: pass --again to do it anyway (it is recorded)")
    chosen, rev = chosen_on_dev(runs), commit()
    rows = []
    for run in runs:
        row = {"run": str(run), "dev_accuracy": dev_accuracy(run), "chosen_on_dev": run == chosen,
               **read_one(run, int8, workers, data)}
        record = {"utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  "commit": rev, "weights_sha256": digests[run],
                  "again": bool(seen_before[run]), **row}
        with (run / LEDGER).open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        rows.append(record)
    return {"runs": rows, "summary": summarize(rows)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample sd (ddof 1; 0 for a single run) of each accuracy and of the int8 drop."""
    out: dict[str, Any] = {"n_runs": len(rows)}
    keys = ["acc_fp32"] + (["acc_int8", "drop_points"] if "acc_int8" in rows[0] else [])
    for k in keys:
        vals = [float(r[k]) for r in rows]
        out[k] = {"mean": round(statistics.fmean(vals), 3),
                  "sd": round(statistics.stdev(vals), 3) if len(vals) > 1 else 0.0,
                  "values": vals}
    return out


def print_table(result: dict[str, Any]) -> None:
    """The per-run rows and the mean ± sd, as a rich table."""
    from rich.console import Console
    from rich.table import Table

    rows, s = result["runs"], result["summary"]
    has8 = "acc_int8" in s
    tab = Table(title="test split, read once (docs/model-selection.md)")
    for col in ("run", "dev", "test fp32", *(("test int8", "drop") if has8 else ()), ""):
        tab.add_column(col, justify="left" if col == "run" else "right")
    for r in rows:
        tab.add_row(Path(r["run"]).name, f"{100 * r['dev_accuracy']:.2f}", f"{r['acc_fp32']:.2f}",
                    *((f"{r['acc_int8']:.2f}", f"{r['drop_points']:+.2f}") if has8 else ()),
                    "shipped (best dev)" if r["chosen_on_dev"] else "")
    tab.add_row("mean ± sd", "", f"{s['acc_fp32']['mean']:.2f} ± {s['acc_fp32']['sd']:.2f}",
                *((f"{s['acc_int8']['mean']:.2f} ± {s['acc_int8']['sd']:.2f}",
                   f"{s['drop_points']['mean']:+.2f}") if has8 else ()), "", style="bold")
    Console().print(tab)
