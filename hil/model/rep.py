"""(b) of hil/model/distill.py: representation distillation as pretraining, a Task of
hil/model/loop.py.

EmbBERT's [CLS] state, through a projection that exists only in training (D -> H, never
shipped), regresses the teacher's sentence embedding with a cosine loss; the encoder is written
as pretrained.pt, the format `hil train --init` reads. A module of its own (torch imported at
the top) because hil/model/distill.py must stay importable without torch for `hil --help`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hil.model import data as D
from hil.model.embbert import EmbBERT
from hil.model.loop import Plan, Task, atomic_save, run
from hil.model.train import TrainArgs, make_optimizer, model_config, set_seed
from hil.quant.tokenizer import Tokenizer

WARMUP = 200  # steps of linear warmup
EVAL_EVERY = 500  # steps between held-out evaluations


class RepDistill(Task):
    """Cosine regression of teacher embeddings from the [CLS] state; the first `held` texts
    (at most 500) are held out for an honest loss."""

    def __init__(self, args: TrainArgs, texts: Sequence[str], emb: np.ndarray, out: Path,
                 lr: float, steps: int, log: Callable[[str], None]) -> None:
        torch.set_num_threads(args.threads)
        self.args, self.out, self.base_lr, self.steps, self.log = args, out, lr, steps, log
        out.mkdir(parents=True, exist_ok=True)
        set_seed(args.seed)
        tok = Tokenizer.from_file(args.tokenizer)
        self.ids = D.encode(tok, texts, args.max_len)
        self.target = torch.from_numpy(np.asarray(emb, np.float32))
        self.held = max(1, min(500, len(self.ids) // 20))  # held-out texts for an honest loss
        self.cfg = model_config(args, num_labels=2)
        self.model = EmbBERT(self.cfg)
        self.proj = nn.Linear(self.cfg.dim, self.target.shape[1])  # training only; never shipped
        self.params = list(self.model.parameters()) + list(self.proj.parameters())
        self.opt = make_optimizer(nn.ParameterList(self.params), lr, args.weight_decay)
        self.lengths = [len(s) for s in self.ids[self.held:]]
        self.run_loss, self.n = 0.0, 0

    def lr_at(self, step: int) -> float:
        """Linear warmup, then (with `steps`) a cosine down to 10%, or (without: the run ends by
        budget, not by a planned length) constant."""
        warm = min(1.0, (step + 1) / WARMUP)
        if not self.steps:
            return self.base_lr * warm
        t = min(1.0, max(0, step - WARMUP) / max(1, self.steps - WARMUP))
        return self.base_lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    def cos_loss(self, idx: Sequence[int]) -> torch.Tensor:
        x = D.pad([self.ids[i] for i in idx])
        h = self.proj(self.model.encode(x, x != 0)[:, 0])  # (B, H)
        return (1 - F.cosine_similarity(h, self.target[list(idx)], dim=-1)).mean()

    def loss(self, batch: list[int], state: dict[str, Any]) -> torch.Tensor:
        loss = self.cos_loss([i + self.held for i in batch])
        self.run_loss += loss.item()
        self.n += 1
        return loss

    @torch.no_grad()
    def held_loss(self) -> float:
        self.model.eval()
        return self.cos_loss(range(self.held)).item()

    def progress(self, state: dict[str, Any]) -> str:
        return f"cos loss {self.run_loss / max(self.n, 1):.4f}"

    def evaluate(self, state: dict[str, Any]) -> str:
        hl, train = self.held_loss(), self.run_loss / max(self.n, 1)
        state["history"].append({"step": state["step"], "elapsed_s": state["elapsed"],
                                 "train_cos_loss": train, "held_cos_loss": hl})
        self.run_loss, self.n = 0.0, 0
        return f"rep-distill step {state['step']}: train {train:.4f} held-out {hl:.4f}"

    def checkpoint_entries(self) -> dict[str, Any]:
        return {"proj": self.proj.state_dict()}

    def load_checkpoint_entries(self, ck: dict[str, Any], state: dict[str, Any]) -> None:
        self.proj.load_state_dict(ck["proj"])
        if "finished" not in ck["state"]:  # older format: a final row marks a finished run
            hist = state["history"]
            state["finished"] = bool(hist) and "train_cos_loss" not in hist[-1]

    def after_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_save({"config": self.cfg.to_dict(), "state_dict": self.model.state_dict(),
                     "history": state["history"], "args": asdict(self.args),
                     "kind": "teacher representation distillation"}, self.out / "pretrained.pt")

    def finish(self, state: dict[str, Any]) -> dict[str, Any]:
        final = self.held_loss()
        state["history"].append({"step": state["step"], "elapsed_s": state["elapsed"],
                                 "held_cos_loss": final})
        self.log(f"rep-distill done: {state['step']} steps, held-out cosine loss {final:.4f}")
        return self.result(state)

    def result(self, state: dict[str, Any]) -> dict[str, Any]:
        hist = state["history"]
        return {"steps": state["step"], "elapsed_s": state["elapsed"],
                "held_cos_loss": hist[-1]["held_cos_loss"] if hist else float("nan"),
                "history": hist}


def rep_pretrain(args: TrainArgs, texts: Sequence[str], emb: np.ndarray, out: Path,
                 budget_min: float, lr: float = 2e-3, log: Callable[[str], None] = print,
                 steps: int = 0) -> dict[str, Any]:
    """Regress the teacher's sentence embedding `emb` of each of `texts` for `steps` steps (the
    learning rate decays on a cosine after the warmup) or, without `steps`, at a constant rate
    for `budget_min` minutes (with `steps`, a nonzero `budget_min` is only a cap); write
    out/pretrained.pt.

    Why steps: a wall-time budget gives another model on a busier or faster machine; a step
    count makes one command repeat the same encoder. Resumable through hil/model/loop.py, whose
    budget counts over all invocations, so a resumed run stops where an uninterrupted one would
    (a finished phase is not run again).
    """
    task = RepDistill(args, texts, emb, out, lr, steps, log)
    log(f"rep-distill: {len(task.ids) - task.held:,} texts ({task.held} held out), "
        f"{f'{steps} steps' if steps else ''}{f' budget {budget_min} min' if budget_min else ''}")
    plan = Plan(out=out, steps=steps or None, batch_size=args.batch_size, seed=args.seed,
                budget_min=budget_min, checkpoint_min=args.checkpoint_min,
                eval_every=EVAL_EVERY, grad_clip=1.0, resume=args.resume, desc="rep-distill",
                record=asdict(args))
    return run(task, plan, log)
