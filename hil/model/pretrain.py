"""Masked-LM pretraining of the encoder on a corpus (`hil train --corpus`): a Task of
hil/model/loop.py, so it resumes bit for bit and counts its budget over all invocations.

Output directory: pretrained.pt ({"config", "state_dict", "mlm_head", "history", "args"}, what
`hil train --init` reads), checkpoint.pt (the loop's, plus "head" and the masking generator
"gen"), metrics.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hil.model import data as D
from hil.model.embbert import EmbBERT, RMSNorm
from hil.model.loop import Plan, Task, atomic_save, run
from hil.model.train import TrainArgs, make_optimizer, model_config, set_seed, warmup_cosine
from hil.quant.tokenizer import Tokenizer


class MLMHead(nn.Module):
    """Masked-LM head for pretraining only: D -> E, then scores against the token embedding
    table (tied weights, so the head adds only D*E + E + V parameters, none of them shipped)."""

    def __init__(self, model: EmbBERT) -> None:
        super().__init__()
        cfg = model.cfg
        self.dense = nn.Linear(cfg.dim, cfg.emb_dim)  # (E, D)
        self.norm = RMSNorm(cfg.emb_dim)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))  # (V,)
        self.tok = model.embed.tok  # tied, not owned

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (N, D) hidden states of the masked positions -> (N, V) logits."""
        # Scaled by 1/sqrt(E): the table is N(0, 1), so unscaled scores start with std sqrt(E)
        # and a loss far above ln V, which wastes the first part of a short pretraining.
        scores = self.norm(F.gelu(self.dense(h))) @ self.tok.weight.T
        return scores / math.sqrt(self.tok.weight.shape[1]) + self.bias

    def own_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("tok.")}


class Pretrain(Task):
    """Masked-LM pretraining: 15% of the tokens masked (a generator of its own, checkpointed),
    loss through the tied MLMHead; a fixed held-out slice of the corpus is the honest loss."""

    def __init__(self, args: TrainArgs, log: Callable[[str], None]) -> None:
        torch.set_num_threads(args.threads)
        self.args, self.log = args, log
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        set_seed(args.seed)
        tok = Tokenizer.from_file(args.tokenizer)
        docs = D.read_corpus(Path(args.corpus or ""), args.corpus_docs or None)
        held = max(1, min(2000, len(docs) // 50))  # held-out docs for an honest MLM loss
        ids = [s for s in D.encode(tok, docs, args.max_len) if len(s) > 2]
        self.dev_ids, self.train_ids = ids[:held], ids[held:]
        self.cfg = model_config(args, num_labels=2)
        self.model = EmbBERT(self.cfg)
        self.head = MLMHead(self.model)
        self.params = list(self.model.parameters()) + [
            p for n, p in self.head.named_parameters() if not n.startswith("tok.")]
        self.opt = make_optimizer(nn.ParameterList(self.params), args.lr, args.weight_decay)
        self.total = max(1, int(args.epochs * math.ceil(len(self.train_ids) / args.batch_size)))
        self.lr_mult = warmup_cosine(self.total, args.warmup, args.min_lr_ratio)
        self.gen = torch.Generator().manual_seed(args.seed)
        self.lengths = [len(s) for s in self.train_ids]
        self.run_loss = self.seen = 0.0
        log(f"pretraining on {len(self.train_ids):,} docs ({held} held out), {self.total} "
            f"steps, max_len {args.max_len}")

    def plan(self) -> Plan:
        a = self.args
        return Plan(out=self.out, steps=self.total, batch_size=a.batch_size, seed=a.seed,
                    budget_min=a.budget_min, checkpoint_min=a.checkpoint_min,
                    eval_every=a.eval_every or 500, grad_clip=a.grad_clip, resume=a.resume,
                    desc="pretrain", record=asdict(a))

    def initial_state(self) -> dict[str, Any]:
        return {"tokens": 0}

    def lr_at(self, step: int) -> float:
        return self.args.lr * self.lr_mult(step)

    def mlm_loss(self, x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, int]:
        """Mean loss over the masked tokens of x and their number."""
        inputs, targets = D.mask_tokens(x, self.cfg.vocab_size, g, self.args.mlm_prob)
        h = self.model.encode(inputs, x != 0)
        sel = targets != -100
        if not sel.any():
            return torch.zeros((), requires_grad=True), 0
        return F.cross_entropy(self.head(h[sel]), targets[sel]), int(sel.sum())

    def loss(self, batch: list[int], state: dict[str, Any]) -> torch.Tensor:
        x = D.pad([self.train_ids[i] for i in batch])
        loss, k = self.mlm_loss(x, self.gen)
        state["tokens"] += int((x != 0).sum())
        self.run_loss += loss.item() * k
        self.seen += k
        return loss

    @torch.no_grad()
    def dev_loss(self) -> float:
        self.model.eval()
        g = torch.Generator().manual_seed(12345)  # same masks every evaluation
        tot = n = 0.0
        for _, x, _ in D.iter_batches(self.dev_ids, [0] * len(self.dev_ids), 128,
                                      shuffle=False):
            loss, k = self.mlm_loss(x, g)
            tot += loss.item() * k
            n += k
        return tot / max(n, 1)

    def _tps(self, state: dict[str, Any]) -> float:
        return state["tokens"] / max(state["elapsed"], 1e-9)

    def progress(self, state: dict[str, Any]) -> str:
        return f"mlm loss {self.run_loss / max(self.seen, 1):.3f} {self._tps(state):,.0f} tok/s"

    def evaluate(self, state: dict[str, Any]) -> str:
        dl, train = self.dev_loss(), self.run_loss / max(self.seen, 1)
        state["history"].append({"step": state["step"], "elapsed_s": state["elapsed"],
                                 "train_loss": train, "dev_loss": dl, "tokens": state["tokens"]})
        self.run_loss = self.seen = 0.0
        return (f"step {state['step']}: train mlm {train:.4f} held-out mlm {dl:.4f} "
                f"({self._tps(state):,.0f} tok/s)")

    def checkpoint_entries(self) -> dict[str, Any]:
        return {"head": self.head.own_state(), "gen": self.gen.get_state()}

    def load_checkpoint_entries(self, ck: dict[str, Any], state: dict[str, Any]) -> None:
        self.head.load_state_dict(ck["head"], strict=False)
        self.gen.set_state(ck["gen"])

    def after_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_save({"config": self.cfg.to_dict(), "state_dict": self.model.state_dict(),
                     "mlm_head": self.head.own_state(), "history": state["history"],
                     "args": asdict(self.args)}, self.out / "pretrained.pt")

    def finish(self, state: dict[str, Any]) -> dict[str, Any]:
        final = self.dev_loss()
        state["history"].append({"step": state["step"], "elapsed_s": state["elapsed"],
                                 "dev_loss": final, "tokens": state["tokens"]})
        self.log(f"{state['stopped'] or 'planned steps done'}; held-out MLM loss {final:.4f}")
        res = self.result(state)
        (self.out / "metrics.json").write_text(json.dumps(res, indent=1))
        return res

    def result(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"steps": state["step"], "elapsed_s": state["elapsed"], "tokens": state["tokens"],
                "held_out_mlm_loss": state["history"][-1]["dev_loss"],
                "history": state["history"], "args": asdict(self.args)}


def pretrain(args: TrainArgs, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Masked-LM pretraining of the encoder on a corpus; writes pretrained.pt. Resumable, within
    args.budget_min minutes summed over all invocations (hil/model/loop.py): a resumed
    `hil train --corpus --data` whose pretraining is done goes straight on to fine-tuning."""
    task = Pretrain(args, log)
    return run(task, task.plan(), log)
