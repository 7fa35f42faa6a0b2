"""The one training loop (hil/model/loop.py) under its three trainers: a run killed mid-way and
resumed ends bit for bit where an uninterrupted run ends, and the wall-time budget is the total
over all invocations (a resume does not restart the clock).

Real runs on real data slices (tiny model, one thread, about a second each). The kill is an
exception raised in place of writing the checkpoint of step K, with a checkpoint after every
step: the process dies with step K done in memory and the last checkpoint at K - 1, as a
session limit would kill it, so the resume also redoes a lost step. The budget tests replace
the loop's clock by one that advances one second per step, which makes budgets exact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the [train] extra) is not installed")

from tiny_training import (  # noqa: E402
    DATASETS,
    assert_same,
    corpus_slice,
    final_state,
    nlu_slice,
    tiny_args,
)

from hil.model import data as D  # noqa: E402
from hil.model import loop  # noqa: E402
from hil.model.pretrain import pretrain  # noqa: E402
from hil.model.rep import rep_pretrain  # noqa: E402
from hil.model.train import finetune  # noqa: E402

pytestmark = pytest.mark.skipif(not (DATASETS / "nlu_scenario").is_dir(),
                                reason=f"datasets not found at {DATASETS}")
quiet: Callable[[str], None] = lambda s: None  # noqa: E731


class Killed(Exception):
    """Stands for SIGKILL: nothing after it runs."""


def kill_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Die instead of writing the checkpoint of `step`."""
    save = loop.atomic_save

    def dying_save(obj: Any, path: Path) -> None:
        if path.name == "checkpoint.pt" and obj["state"]["step"] == step:
            raise Killed(step)
        save(obj, path)

    monkeypatch.setattr(loop, "atomic_save", dying_save)


class StepClock:
    """loop.clock advancing one second per reading; the loop reads it once per invocation and
    once per step, so `elapsed` is exactly the number of steps taken (in seconds)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def trainer(kind: str, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """run(out, **TrainArgs overrides) for one of the three trainers, on tiny real data:
    finetune with EMA, token drop and dropout (12 steps), masked-LM pretraining with dropout
    (2 epochs, 24 steps), representation distillation by steps (9)."""
    data = nlu_slice(tmp_path, n_train=96, n_dev=30, n_test=20)
    if kind == "finetune":
        return lambda out, **kw: finetune(tiny_args(out, data, ema=0.9, token_drop=0.1,
                                                    eval_every=5, **kw), quiet)
    if kind == "pretrain":
        corpus = corpus_slice(tmp_path, 200)
        return lambda out, **kw: pretrain(tiny_args(out, None, corpus=str(corpus), max_len=32,
                                                    eval_every=5, lr=5e-3, **kw), quiet)
    texts = D.load_dataset(data).train.texts
    emb = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)

    def rep(out: Path, budget_min: float = 0.0, **kw: Any) -> dict[str, Any]:
        return rep_pretrain(tiny_args(out, data, max_len=16, dropout=0.3, **kw), texts, emb,
                            out, budget_min=budget_min, lr=5e-3, log=quiet, steps=9)
    return rep


TRAINERS = ("finetune", "pretrain", "rep")
KILL_STEP = {"finetune": 8, "pretrain": 15, "rep": 5}  # past an epoch boundary where there is one


@pytest.mark.parametrize("kind", TRAINERS)
def test_killed_and_resumed_equals_uninterrupted(kind: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run = trainer(kind, tmp_path)
    whole = run(tmp_path / "whole")
    with monkeypatch.context() as m:
        kill_at(m, KILL_STEP[kind])
        with pytest.raises(Killed):
            run(tmp_path / "cut", checkpoint_min=0.0)
    on_disk = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert on_disk["state"]["step"] == KILL_STEP[kind] - 1  # step K is lost and redone
    resumed = run(tmp_path / "cut", resume=True)
    assert resumed["steps"] == whole["steps"] > KILL_STEP[kind]
    # Bit for bit: same batches, masks, dropout draws and learning rates (single thread, CPU,
    # the same operations in the same order), so equality, not closeness, is the claim.
    assert_same(final_state(tmp_path / "whole"), final_state(tmp_path / "cut"))


@pytest.mark.parametrize("kind", TRAINERS)
def test_budget_is_the_total_over_invocations(kind: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "clock", StepClock())
    run = trainer(kind, tmp_path)
    five = 5 / 60  # minutes: five steps of the step clock
    whole = run(tmp_path / "whole", budget_min=five)
    assert whole["steps"] == 5
    with monkeypatch.context() as m:
        kill_at(m, 3)
        with pytest.raises(Killed):
            run(tmp_path / "cut", budget_min=five, checkpoint_min=0.0)
    # Resumed with the same budget: the clock continues from the checkpoint (2 steps, 2 s), so
    # the run stops at step 5 as the uninterrupted one did; a per-invocation budget would have
    # gone on to step 7.
    resumed = run(tmp_path / "cut", budget_min=five, resume=True)
    assert resumed["steps"] == 5 and resumed["elapsed_s"] == 5.0
    assert_same(final_state(tmp_path / "whole"), final_state(tmp_path / "cut"))
    # Resumed once more with the same budget: nothing left to do, nothing rewritten.
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cut").iterdir()}
    again = run(tmp_path / "cut", budget_min=five, resume=True)
    assert again["steps"] == 5
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cut").iterdir()} == stamps
    # A larger total budget continues the run: 8 steps in all, not 5 more.
    longer = run(tmp_path / "cut", budget_min=8 / 60, resume=True)
    assert longer["steps"] == 8 and longer["elapsed_s"] == 8.0
    if kind == "finetune":
        assert "budget" in whole["stopped"] and "budget" in again["stopped"]


def test_a_run_needs_steps_or_a_budget(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="steps or a wall-time budget"):
        loop.Plan(out=tmp_path, steps=None, batch_size=16, seed=0)


def test_a_checkpoint_of_the_old_loops_still_resumes(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The copies before hil/model/loop.py wrote a LambdaLR 'scheduler' entry and no
    'finished'; such a checkpoint resumes to the same weights (the learning rate is a function
    of the step, so the scheduler's state is not needed). Checked by hand against checkpoints
    written by the old code too; old pretraining checkpoints hold no torch generator, so with
    dropout their resume is not bit for bit (it was not before either)."""
    run = trainer("finetune", tmp_path)
    whole = run(tmp_path / "whole")
    with monkeypatch.context() as m:
        kill_at(m, 4)
        with pytest.raises(Killed):
            run(tmp_path / "cut", checkpoint_min=0.0)
    path = tmp_path / "cut" / "checkpoint.pt"
    ck = torch.load(path, weights_only=False)
    del ck["state"]["finished"]
    ck["scheduler"] = {"last_epoch": ck["state"]["step"], "base_lrs": [3e-3, 3e-3]}
    torch.save(ck, path)
    assert run(tmp_path / "cut", resume=True)["steps"] == whole["steps"]
    assert_same(final_state(tmp_path / "whole"), final_state(tmp_path / "cut"))
