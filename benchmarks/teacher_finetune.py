"""Full fine-tuning of the MiniLM teacher per dataset, against the frozen encoder + head that
`hil train --teacher minilm` uses (issue #8, step (a): "fine-tune the teacher per dataset").

Why this exists: the shipped recipe never updates MiniLM's 22M weights; it fits a logistic head
on cached sentence embeddings (seconds, and the embeddings are reused by every run). This script
measures what end-to-end fine-tuning (AdamW, linear warmup and decay, mean-pooled encoder + linear
head, cross-entropy on the hard labels) would buy, per epoch, and what it costs on this CPU.

    python benchmarks/teacher_finetune.py sms_spam --epochs 3 --threads 1

Merges one row per (dataset, max_len) into benchmarks/results/teacher_finetune.{json,md}; the
frozen-head figures beside it come from benchmarks/results/distill_teacher.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.model import data as D  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def finetune(name: str, epochs: int, max_len: int, lr: float, batch: int, seed: int,
             threads: int, log: Any = print) -> dict[str, Any]:
    """Fine-tune a private copy of the teacher; dev and test accuracy after every epoch."""
    import copy

    import torch

    from hil.model.teacher import Teacher, mean_pool

    torch.manual_seed(seed)
    ds = D.load_dataset(name)
    assert ds.test is not None
    teacher = Teacher("minilm", threads=threads).load()
    torch.set_num_threads(threads)
    encoder = copy.deepcopy(teacher.model).train()
    head = torch.nn.Linear(teacher.dim, len(ds.labels))
    opt = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=lr,
                            weight_decay=0.01)
    n = len(ds.train.texts)
    steps = epochs * -(-n // batch)
    warm = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / steps))

    def logits(texts: list[str]) -> torch.Tensor:
        enc = teacher.tokenizer(texts, padding=True, truncation=True, max_length=max_len,
                                return_tensors="pt")
        return head(mean_pool(encoder(**enc).last_hidden_state, enc["attention_mask"]))

    def accuracy(texts: list[str], labels: list[int]) -> float:
        encoder.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pred = np.zeros(len(texts), dtype=np.int64)
        with torch.inference_mode():
            for s in range(0, len(order), 64):
                idx = order[s:s + 64]
                pred[idx] = logits([texts[i] for i in idx]).argmax(-1).numpy()
        encoder.train()
        return float((pred == np.asarray(labels)).mean())

    rng = np.random.default_rng(seed)
    t0 = time.monotonic()
    history = []
    for epoch in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            loss = torch.nn.functional.cross_entropy(
                logits([ds.train.texts[i] for i in idx]),
                torch.tensor([ds.train.labels[i] for i in idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        row = {"epoch": epoch + 1, "dev_acc": accuracy(ds.dev.texts, ds.dev.labels),
               "test_acc": accuracy(ds.test.texts, ds.test.labels),
               "minutes": round((time.monotonic() - t0) / 60, 2)}
        log(json.dumps(row))
        history.append(row)
    return {"dataset": name, "max_len": max_len, "epochs": epochs, "lr": lr, "batch": batch,
            "seed": seed, "threads": threads, "train_n": n, "dev_n": len(ds.dev.texts),
            "test_n": len(ds.test.texts), "history": history}


def frozen_head(name: str) -> dict[str, Any] | None:
    """The frozen MiniLM + head row of benchmarks/distill_teacher.py, if it was run."""
    path = RESULTS / "distill_teacher.json"
    if not path.exists():
        return None
    rows = [r for r in json.loads(path.read_text())
            if r["dataset"] == name and r.get("teacher", "minilm") == "minilm"]
    return rows[0] if rows else None


def write(row: dict[str, Any]) -> None:
    path = RESULTS / "teacher_finetune.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if (r["dataset"], r["max_len"]) != (row["dataset"], row["max_len"])]
    rows.append(row)
    path.write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "# MiniLM teacher: full fine-tuning vs frozen encoder + head",
        "",
        "Produced by `python benchmarks/teacher_finetune.py DATASET --epochs N`. Full: every "
        "MiniLM weight and a linear head trained end to end on the train split (AdamW, warmup "
        "6% then linear decay, mean pooling, seed 0). Frozen: the teacher `hil train --teacher "
        "minilm` uses (logistic head on cached embeddings; benchmarks/distill_teacher.py). "
        "Dev is carved from train where the dataset has none. Minutes are wall time on this "
        "2-core machine with the torch threads in the json (`threads`), while other jobs ran.",
        "",
        "| dataset | max_len | teacher | epoch | dev | test | minutes |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        fz = frozen_head(r["dataset"])
        if fz:
            lines.append(f"| {r['dataset']} | - | frozen + head | - | {fz['dev_acc']:.4f} | "
                         f"{fz['test_acc']:.4f} | - |")
        for h in r["history"]:
            lines.append(f"| {r['dataset']} | {r['max_len']} | full fine-tune | {h['epoch']} | "
                         f"{h['dev_acc']:.4f} | {h['test_acc']:.4f} | {h['minutes']:.1f} |")
    (RESULTS / "teacher_finetune.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=64, help="teacher tokens")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    row = finetune(a.dataset, a.epochs, a.max_len, a.lr, a.batch_size, a.seed, a.threads)
    if not a.no_write:
        write(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
