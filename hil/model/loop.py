"""The one training loop of hil.model: `finetune`, `pretrain` and `rep_pretrain` all run `run`.

Why one loop: the three trainers had hand-written copies of the same resumable, budgeted loop,
and the copies drifted (two counted the budget per invocation, one over all invocations; one
did not restore the dropout generator on --resume). Here the loop is written once and configured
from outside (nanoGPT style): a `Plan` says how long, how often and where; a `Task` says what a
step computes and what is judged, written and returned.

Resuming. OUT/checkpoint.pt holds the model, the optimizer, the loop state (step, elapsed,
history, stop reason), torch's global generator (dropout) and the task's own entries (EMA,
MLM head and masking generator, projection). Batch order is a pure function of (seed, epoch)
and the learning rate of (step), so a run killed and resumed sees exactly the batches, masks,
dropout draws and learning rates an uninterrupted run would, and ends with the same weights
bit for bit (tests/test_train_loop.py). Steps done after the last checkpoint are redone.

Budget policy: the wall-time budget is the TOTAL over all invocations of a run. `state
["elapsed"]` is saved in every checkpoint and continues on --resume, and the budget is checked
against it before every step. Why: a run killed by a session limit and resumed must stop where
an uninterrupted run with the same budget would have stopped; a per-invocation budget would
restart the clock at each resume, so a run resumed three times trains for up to four budgets
and a combined `hil train --corpus --data --resume` would pretrain again on every resume. To
train longer, resume with a larger --budget-min (the budget is the total: 60 then --resume
--budget-min 90 gives 30 more minutes). What counts: the time of the training loop (steps,
evaluations, checkpoints), not setup (data, teacher targets); steps lost to a kill after the
last checkpoint are counted again when redone, so the counted time is the time of the steps
the model actually holds.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hil import progress
from hil.model import data as D

#: The loop's clock, read once per step (and once per invocation): `state["elapsed"]` and the
#: budget use nothing else, so a test can replace it with a fake clock and get exact budgets.
clock: Callable[[], float] = time.monotonic


@dataclass
class Plan:
    """How long, how often and where: the outside configuration of one `run`."""

    out: Path  # OUT/checkpoint.pt is written here
    steps: int | None  # planned optimizer steps; None = until the budget is spent
    batch_size: int
    seed: int  # epoch e trains on batch_order(..., seed * 1000 + e)
    budget_min: float = 0.0  # wall-time budget over ALL invocations of the run; 0 = none
    checkpoint_min: float = 3.0  # minutes between checkpoints; 0 = after every step
    eval_every: int = 0  # steps between Task.evaluate calls; 0 = none inside the loop
    grad_clip: float = 0.0  # max gradient norm over Task.params; 0 = no clipping
    resume: bool = False  # continue from OUT/checkpoint.pt when it exists
    desc: str = "train"  # progress-bar label
    record: dict[str, Any] = field(default_factory=dict)  # stored as ck["args"] (TrainArgs)

    def __post_init__(self) -> None:
        if self.steps is None and not self.budget_min:
            raise ValueError("a run needs a number of steps or a wall-time budget")


class Task:
    """What one trainer adds to the loop. Subclasses set `model`, `opt`, `params` and `lengths`
    and override `lr_at`, `loss`, `finish` and `result`; the other hooks default to nothing."""

    model: nn.Module  # put in train mode before each step; its state_dict is ck["model"]
    opt: torch.optim.Optimizer
    params: Sequence[nn.Parameter]  # clipped together when Plan.grad_clip
    lengths: Sequence[int]  # token counts of the training examples (length-bucketed batches)

    def initial_state(self) -> dict[str, Any]:
        """Task-specific entries of a fresh loop state (saved and resumed with it)."""
        return {}

    def lr_at(self, step: int) -> float:
        """The learning rate of every parameter group at `step` (a pure function: resumable)."""
        raise NotImplementedError

    def loss(self, batch: list[int], state: dict[str, Any]) -> torch.Tensor:
        """The loss of one batch (indices into the training examples) at state["step"]; may
        update running statistics and task entries of `state`."""
        raise NotImplementedError

    def after_step(self) -> None:
        """After the optimizer step (e.g. update a weight average)."""

    def progress(self, state: dict[str, Any]) -> str:
        """The progress bar's text."""
        return ""

    def evaluate(self, state: dict[str, Any]) -> str:
        """Every Plan.eval_every steps: judge, append to state["history"], maybe set
        state["stopped"] (early stop); returns a line for the log."""
        return ""

    def checkpoint_entries(self) -> dict[str, Any]:
        """Task entries of the checkpoint beyond model, optimizer, state and torch_rng."""
        return {}

    def load_checkpoint_entries(self, ck: dict[str, Any], state: dict[str, Any]) -> None:
        """Restore checkpoint_entries() (and migrate an older checkpoint's state)."""

    def after_checkpoint(self, state: dict[str, Any]) -> None:
        """After each checkpoint (e.g. refresh pretrained.pt)."""

    def finish(self, state: dict[str, Any]) -> dict[str, Any]:
        """After the last step of an invocation: final judgement, output files; the result."""
        raise NotImplementedError

    def result(self, state: dict[str, Any]) -> dict[str, Any]:
        """The result of a run that was already finished and had nothing left to do."""
        raise NotImplementedError


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a torn checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def remaining_batches(state: dict[str, Any], total: int | None, lengths: Sequence[int],
                      batch_size: int, seed: int) -> Iterator[list[int]]:
    """The batches still to train on, from the step `state` has reached to `total` (None =
    without end): epoch e uses its own shuffled order (seed * 1000 + e), so a resumed run sees
    exactly the batches an uninterrupted one would. The caller advances state["step"] once per
    batch; a run whose state says it stopped gets no more batches."""
    steps_per_epoch = math.ceil(len(lengths) / batch_size)
    while (total is None or state["step"] < total) and not state["stopped"]:
        epoch, pos = divmod(state["step"], steps_per_epoch)
        for b in D.batch_order(lengths, batch_size, True, seed * 1000 + epoch)[pos:]:
            if (total is not None and state["step"] >= total) or state["stopped"]:
                return
            yield b


def budget_spent(state: dict[str, Any], budget_min: float) -> bool:
    """The budget policy in one place: elapsed time summed over all invocations."""
    return bool(budget_min) and state["elapsed"] >= budget_min * 60


def run(task: Task, plan: Plan, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train `task` as `plan` says (resuming from OUT/checkpoint.pt with plan.resume) and return
    its result. A resumed run with nothing left to do (planned steps done, early-stopped, or
    budget spent) that had finished before returns the recorded result without touching its
    files."""
    plan.out.mkdir(parents=True, exist_ok=True)
    path = plan.out / "checkpoint.pt"
    state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "history": [], "stopped": "",
                             "finished": False, **task.initial_state()}
    if plan.resume and path.exists():
        ck = torch.load(path, map_location="cpu", weights_only=False)
        task.model.load_state_dict(ck["model"])
        task.opt.load_state_dict(ck["optimizer"])  # an old "scheduler" entry is not needed
        if "torch_rng" in ck:  # older pretraining checkpoints lack it
            torch.set_rng_state(ck["torch_rng"])
        state.update(ck["state"])
        task.load_checkpoint_entries(ck, state)
        log(f"resumed from {path} at step {state['step']} "
            f"({state['elapsed'] / 60:.1f} min of training so far)")
    ran = _train(task, plan, state, path, log)
    if not ran and state["finished"]:
        log(f"nothing left to do at step {state['step']}: "
            f"{state['stopped'] or 'planned steps done'}")
        return task.result(state)
    rng = torch.get_rng_state()  # finish() may draw (load_model builds a model): keep the
    res = task.finish(state)     # generator as the last step left it, for a later --resume
    state["finished"] = True
    _checkpoint(task, plan, state, path, rng)
    return res


def _train(task: Task, plan: Plan, state: dict[str, Any], path: Path,
           log: Callable[[str], None]) -> int:
    """The steps of one invocation; returns how many were taken."""
    if state["stopped"].startswith("budget"):
        state["stopped"] = ""  # judged again below, against this invocation's (total) budget
    bar = Progress(plan.steps, plan.desc, log)
    now = clock()
    start, last = now - state["elapsed"], now  # elapsed continues over resumes
    ran = 0
    for b in remaining_batches(state, plan.steps, task.lengths, plan.batch_size, plan.seed):
        if budget_spent(state, plan.budget_min):
            state["stopped"] = f"budget {plan.budget_min:g} min reached"
            break
        state["finished"] = False
        task.model.train()
        lr = task.lr_at(state["step"])
        for group in task.opt.param_groups:
            group["lr"] = lr
        loss = task.loss(b, state)
        task.opt.zero_grad(set_to_none=True)
        loss.backward()
        if plan.grad_clip:
            nn.utils.clip_grad_norm_(task.params, plan.grad_clip)
        task.opt.step()
        task.after_step()
        state["step"] += 1
        ran += 1
        now = clock()
        state["elapsed"] = now - start
        bar.update(state["step"], task.progress(state))
        if plan.eval_every and state["step"] % plan.eval_every == 0:
            bar.log(task.evaluate(state))
        if now - last >= plan.checkpoint_min * 60 or state["stopped"]:
            _checkpoint(task, plan, state, path)
            last = now
    bar.close()
    if ran:
        _checkpoint(task, plan, state, path)  # before finish(): a kill there loses no steps
    return ran


def _checkpoint(task: Task, plan: Plan, state: dict[str, Any], path: Path,
                rng: torch.Tensor | None = None) -> None:
    """Everything a bit-exact resume needs (the module docstring lists it)."""
    rng = torch.get_rng_state() if rng is None else rng
    atomic_save({"model": task.model.state_dict(), "optimizer": task.opt.state_dict(),
                 "state": state, "torch_rng": rng, "args": plan.record,
                 **task.checkpoint_entries()}, path)
    task.after_checkpoint(state)


class Progress:
    """A rich progress bar with the loss when stderr is a terminal (hil.progress); one line
    through `log` every `every` seconds when there is no bar or stdout is not a terminal (a log
    file or a pipe keeps the trace it always had, a test's silent `log` gets nothing)."""

    def __init__(self, total: int | None, desc: str, log: Callable[[str], None] = print,
                 every: float = 30.0) -> None:
        self.total, self.desc, self.every, self._log = total, desc, every, log
        self.last = 0.0
        self.bar: Any = None
        self.trace = True  # the periodic log lines
        if progress.is_terminal():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                    MofNCompleteColumn(), TimeElapsedColumn(),
                                    TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                    console=progress.console(), redirect_stdout=False,
                                    redirect_stderr=False)
            self.bar.start()
            self.task = self.bar.add_task(desc, total=total, info="")
            self.trace = not sys.stdout.isatty()

    def update(self, step: int, info: str) -> None:
        """Move the bar to `step`; and/or log a line when `every` seconds have passed."""
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)
        if not self.trace:
            return
        end = self.total is not None and step >= self.total
        if time.monotonic() - self.last >= self.every or end:
            self.last = time.monotonic()
            of = f"/{self.total}" if self.total is not None else ""
            self._log(f"{self.desc} step {step}{of} {info}")

    def log(self, msg: str) -> None:
        """An evaluation line: above the bar when both go to the terminal, else to `log`."""
        if not msg:
            return
        if self.bar is not None and not self.trace:
            self.bar.console.print(msg)
        else:
            self._log(msg)

    def close(self) -> None:
        """Stop the bar (it stays on screen with the last step's numbers)."""
        if self.bar is not None:
            self.bar.stop()
