"""Helpers of the training tests (not a test module): real data cut to a few dozen rows and a
model small enough that a whole run takes a second, so that resume and budget behaviour can be
checked on real runs rather than mocks.

Import after `pytest.importorskip("torch")`: hil.model.train needs torch.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import torch

from hil.model import data as D
from hil.model.train import TrainArgs

DATASETS = D.SHARED_DATASETS
CORPUS = DATASETS / "pretrain" / "corpus.txt.gz"


def nlu_slice(tmp_path: Path, n_train: int = 160, n_dev: int = 60, n_test: int = 40,
              stride: bool = False) -> Path:
    """A copy of nlu_scenario cut to its first n rows per split (or, with `stride`, n rows
    spread evenly over the split, so that every class is present)."""
    src = DATASETS / "nlu_scenario"
    out = tmp_path / "nlu_small"
    out.mkdir()
    (out / "labels.json").write_text((src / "labels.json").read_text())
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        with gzip.open(src / f"{split}.jsonl.gz", "rt") as f:
            rows = f.readlines() if stride else [next(f) for _ in range(n)]
        (out / f"{split}.jsonl").write_text("".join(rows[:: len(rows) // n][:n] if stride
                                                    else rows))
    return out


def corpus_slice(tmp_path: Path, n: int) -> Path:
    """The first n documents of the pretraining corpus."""
    out = tmp_path / "corpus.txt"
    with gzip.open(CORPUS, "rt") as f:
        out.write_text("".join(next(f) for _ in range(n)))
    return out


def tiny_args(out: Path, data: Path | None, **kw: object) -> TrainArgs:
    """TrainArgs of a one-layer D=32 model on one thread, no early stop, no timed checkpoint;
    `kw` overrides any of them."""
    base: dict[str, object] = dict(
        out=str(out), data=str(data) if data else None, max_len=24, epochs=2, batch_size=16,
        lr=3e-3, dim=32, emb_dim=8, n_layers=1, kernel=4, threads=1, patience=0,
        checkpoint_min=100.0, dropout=0.1)
    base.update(kw)
    return TrainArgs(**base)  # type: ignore[arg-type]


def final_state(out: Path) -> dict[str, Any]:
    """Everything of a run's checkpoint that a later step depends on: weights, optimizer,
    generators, the task's own entries (EMA, MLM head, projection) and the step."""
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    return {k: ck[k] for k in ("model", "optimizer", "torch_rng", "ema", "head", "gen", "proj")
            if k in ck} | {"step": ck["state"]["step"]}


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """a == b, tensors compared bit for bit (torch.equal), `where` naming the first difference."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where
