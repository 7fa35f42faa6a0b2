"""Fine-tuning on a labelled dataset, and what every trainer shares (settings, metrics, optimizer,
schedule, the shipped model.pt format).

Everything a long run on a shared two-core machine needs: fixed seeds, AdamW with linear warmup
and cosine decay, dropout and label smoothing, early stopping on dev, a wall-time budget counted
over all invocations of a run, a checkpoint every few minutes that `--resume` continues from bit
for bit, and progress as a rich bar on a terminal or plain lines in a log. The loop itself, its
checkpoint and its budget policy are hil/model/loop.py (one loop for fine-tuning, masked-LM
pretraining in hil/model/pretrain.py and representation distillation in hil/model/rep.py).

Output directory of a fine-tune:
  model.pt        the best-on-dev model in the shipped format (see `save_model`)
  checkpoint.pt   full training state (model, optimizer, position, history, generator state)
  metrics.json    history of train loss/accuracy and dev metrics (never test: hil model test)
  tokenizer.json  the tokenizer the ids came from
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hil.model import data as D
from hil.model.embbert import EmbBERT, EmbBERTConfig
from hil.model.loop import Plan, Task, atomic_save, run
from hil.quant.tokenizer import DEFAULT_TOKENIZER, Tokenizer


# ---- settings -----------------------------------------------------------------------------------
@dataclass
class TrainArgs:
    """All knobs of one run; stored in checkpoints and model cards so a run can be repeated."""

    out: str
    data: str | None = None  # dataset dir or name (fine-tuning)
    corpus: str | None = None  # pretraining corpus (one document a line)
    init: str | None = None  # pretrained.pt (or model.pt) to start the encoder from
    tokenizer: str = str(DEFAULT_TOKENIZER)
    max_len: int = 64
    epochs: float = 10.0
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06  # fraction of the planned steps
    min_lr_ratio: float = 0.05
    dropout: float = 0.1
    label_smoothing: float = 0.0
    token_drop: float = 0.0  # augmentation: drop each training token (not [CLS]) with this prob
    grad_clip: float = 1.0
    ema: float = 0.0  # exponential moving average of the weights (decay); 0 = off
    seed: int = 0
    budget_min: float = 0.0  # wall-time minutes over ALL invocations (loop.py); 0 = none
    patience: int = 4  # dev evaluations without improvement before stopping; 0 = never
    eval_every: int = 0  # steps between dev evaluations; 0 = once per epoch
    checkpoint_min: float = 3.0  # 0 = after every step
    resume: bool = False
    threads: int = 2
    dev_fraction: float = 0.1
    mlm_prob: float = 0.15
    corpus_docs: int = 0  # 0 = whole corpus
    emb_dim: int = 16
    dim: int = 128
    n_layers: int = 4
    kernel: int = 32
    vocab_size: int = 8192
    att_output: bool = True  # False: the variant without the attention output projection
    command: str = ""  # the exact command line, recorded in cards


@dataclass
class Metrics:
    """Classification metrics of one split."""

    n: int
    loss: float
    accuracy: float
    macro_f1: float
    confusion: list[list[int]] = field(repr=False)  # [true][predicted]
    per_class_f1: list[float] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- small helpers ------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def metrics_from_predictions(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int,
                             loss: float = float("nan")) -> Metrics:
    """Accuracy, macro-F1 (classes absent from both truth and prediction are left out, as
    scikit-learn's 'labels present' convention) and the confusion matrix."""
    cm = [[0] * num_labels for _ in range(num_labels)]
    for t, p in zip(y_true, y_pred, strict=True):
        cm[t][p] += 1
    f1s: list[float] = []
    present: list[float] = []
    for c in range(num_labels):
        tp = cm[c][c]
        fp = sum(cm[r][c] for r in range(num_labels)) - tp
        fn = sum(cm[c]) - tp
        f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
        f1s.append(f1)
        if tp + fp + fn:
            present.append(f1)
    n = len(y_true)
    acc = sum(cm[c][c] for c in range(num_labels)) / n if n else float("nan")
    macro = sum(present) / len(present) if present else float("nan")
    return Metrics(n, loss, acc, macro, cm, f1s)


@torch.no_grad()
def predict(model: EmbBERT, ids: Sequence[Sequence[int]], batch_size: int = 128
            ) -> torch.Tensor:
    """Logits (N, C) in input order."""
    model.eval()
    out = torch.empty(len(ids), model.cfg.num_labels)
    for b, x, _ in D.iter_batches(ids, [0] * len(ids), batch_size, shuffle=False):
        out[b] = model(x)
    return out


def evaluate(model: EmbBERT, ids: Sequence[Sequence[int]], labels: Sequence[int],
             batch_size: int = 128) -> Metrics:
    """Metrics of `model` on already-tokenized texts."""
    logits = predict(model, ids, batch_size)
    y = torch.tensor(list(labels), dtype=torch.long)
    loss = F.cross_entropy(logits, y).item() if len(y) else float("nan")
    return metrics_from_predictions(list(labels), logits.argmax(-1).tolist(),
                                    model.cfg.num_labels, loss)


def drop_tokens(seqs: Sequence[Sequence[int]], p: float, seed: int) -> list[list[int]]:
    """Token-dropout augmentation: each token after [CLS] is removed with probability p (at
    least one kept). Why: the models overfit within a few epochs (train 0.95+ vs dev 0.88 on
    nlu_scenario); a different random view of each sentence per epoch is the cheapest
    augmentation that needs no extra data or tokenizer work. Seeded per step, so --resume is
    exact."""
    g = random.Random(seed)
    out: list[list[int]] = []
    for s in seqs:
        kept = [t for t in s[1:] if g.random() >= p]
        out.append([s[0]] + (kept or list(s[1:2])))
    return out


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; no decay on gains, biases and the lambda vectors (1-D tensors), as in BERT."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def warmup_cosine(total: int, warmup: float, min_ratio: float) -> Callable[[int], float]:
    """LR multiplier: linear warmup over `warmup`*total steps, cosine down to `min_ratio`."""
    w = max(1, int(total * warmup))

    def f(step: int) -> float:
        if step < w:
            return (step + 1) / w
        t = min(1.0, (step - w) / max(1, total - w))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return f


def model_config(args: TrainArgs, num_labels: int) -> EmbBERTConfig:
    return EmbBERTConfig(vocab_size=args.vocab_size, max_len=args.max_len, emb_dim=args.emb_dim,
                         dim=args.dim, n_layers=args.n_layers, kernel=args.kernel,
                         num_labels=num_labels, dropout=args.dropout,
                         att_output=args.att_output)


def load_encoder_weights(model: EmbBERT, path: str | Path) -> list[str]:
    """Copy a pretrained (or another fine-tuned) model's encoder into `model`; the classifier is
    left fresh. Position embeddings are cut to the new max_len. Returns the names loaded."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    src = ckpt["state_dict"]
    own = model.state_dict()
    loaded = []
    for k, v in src.items():
        if k.startswith("classifier.") or k not in own:
            continue
        if k == "embed.pos.weight" and v.shape[0] >= own[k].shape[0]:
            v = v[: own[k].shape[0]]
        if v.shape != own[k].shape:
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, model needs "
                             f"{tuple(own[k].shape)}")
        own[k] = v
        loaded.append(k)
    model.load_state_dict(own)
    return loaded


def save_model(path: Path, model: EmbBERT, labels: list[str], dataset: str,
               extra: dict[str, Any] | None = None) -> None:
    """The shipped format: {"config": EmbBERTConfig dict, "state_dict", "labels", "dataset",
    "max_len", ...extra}; what hil.quant reads."""
    obj = {"config": model.cfg.to_dict(), "state_dict": {k: v.detach().clone() for k, v in
                                                         model.state_dict().items()},
           "labels": list(labels), "dataset": dataset, "max_len": model.cfg.max_len}
    obj.update(extra or {})
    atomic_save(obj, path)


def load_model(path: str | Path) -> tuple[EmbBERT, dict[str, Any]]:
    """Load a shipped-format model.pt -> (model in eval mode, the whole checkpoint dict)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = EmbBERTConfig.from_dict(ckpt["config"])
    model = EmbBERT(cfg)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


# ---- fine-tuning --------------------------------------------------------------------------------
def weight_average(model: EmbBERT, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of the weights (Polyak averaging), torch's AveragedModel.

    Why: measured on nlu_scenario, dev accuracy of one run moves by ~0.5 points between
    consecutive epochs, and a 933-sentence dev set then picks a lucky epoch rather than a good
    model; the average is smoother and usually a little better. The decay ramps up as
    min(decay, (1 + n) / (10 + n)) so that the first steps are not frozen into the average.
    """
    def ema_avg(avg: torch.Tensor, cur: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return avg * d + cur * (1.0 - d)

    return torch.optim.swa_utils.AveragedModel(model, avg_fn=ema_avg, use_buffers=True)


class Finetune(Task):
    """Fine-tuning (or training from scratch) of a classifier: the Task hil.model.loop runs.

    Judged on dev every `eval_every` steps (and at the planned end); the best judged weights
    (the EMA when --ema) are model.pt; `patience` evaluations without gain stop the run."""

    def __init__(self, args: TrainArgs, log: Callable[[str], None],
                 loss_fn: Callable[..., torch.Tensor] | None) -> None:
        torch.set_num_threads(args.threads)
        self.args, self.log, self.loss_fn = args, log, loss_fn
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        set_seed(args.seed)
        self.tok = Tokenizer.from_file(args.tokenizer)
        tok_copy = self.out / "tokenizer.json"
        if not tok_copy.exists() or tok_copy.read_bytes() != Path(args.tokenizer).read_bytes():
            shutil.copyfile(args.tokenizer, tok_copy)  # (a finished run resumed stays untouched)
        ds = self.ds = D.load_dataset(args.data or "", args.dev_fraction, args.seed)
        self.train_ids = D.encode(self.tok, ds.train.texts, args.max_len)
        self.dev_ids = D.encode(self.tok, ds.dev.texts, args.max_len)
        self.model = EmbBERT(model_config(args, len(ds.labels)))
        # --init seeds a fresh run only: a resumed one continues from its checkpoint.
        if args.init and not (args.resume and (self.out / "checkpoint.pt").exists()):
            n = len(load_encoder_weights(self.model, args.init))
            log(f"initialised {n} encoder tensors from {args.init}")
        self.params = list(self.model.parameters())
        self.opt = make_optimizer(self.model, args.lr, args.weight_decay)
        self.ema = weight_average(self.model, args.ema) if args.ema else None
        # What is judged on dev and shipped: the averaged weights when --ema is on.
        self.judged: EmbBERT = self.ema.module if self.ema is not None else self.model
        steps_per_epoch = math.ceil(len(self.train_ids) / args.batch_size)
        self.epoch_steps = steps_per_epoch
        self.total = max(1, int(args.epochs * steps_per_epoch))
        self.lr_mult = warmup_cosine(self.total, args.warmup, args.min_lr_ratio)
        self.lengths = [len(s) for s in self.train_ids]
        self.run_loss = self.run_acc = 0.0
        self.seen = 0
        log(f"{ds.name}: train {len(ds.train)}, dev {len(ds.dev)} ({ds.dev_source}), "
            f"test {len(ds.test) if ds.test else 0}; {len(ds.labels)} labels; "
            f"{self.model.num_params():,} parameters; {self.total} steps")

    def plan(self) -> Plan:
        a = self.args
        return Plan(out=self.out, steps=self.total, batch_size=a.batch_size, seed=a.seed,
                    budget_min=a.budget_min, checkpoint_min=a.checkpoint_min,
                    eval_every=a.eval_every or self.epoch_steps, grad_clip=a.grad_clip,
                    resume=a.resume, desc=f"train {self.ds.name}", record=asdict(a))

    def initial_state(self) -> dict[str, Any]:
        return {"best": -1.0, "best_step": 0, "bad_evals": 0}

    def lr_at(self, step: int) -> float:
        return self.args.lr * self.lr_mult(step)  # what LambdaLR computed, bit for bit

    def loss(self, batch: list[int], state: dict[str, Any]) -> torch.Tensor:
        a = self.args
        seqs = [self.train_ids[i] for i in batch]
        if a.token_drop:
            seqs = drop_tokens(seqs, a.token_drop, a.seed * 1_000_003 + state["step"])
        y = torch.tensor([self.ds.train.labels[i] for i in batch])
        logits = self.model(D.pad(seqs))
        loss = (self.loss_fn(self.model, batch, logits, y, state["step"]) if self.loss_fn else
                F.cross_entropy(logits, y, label_smoothing=a.label_smoothing))
        self.run_loss += loss.item() * len(batch)
        self.run_acc += (logits.argmax(-1) == y).sum().item()
        self.seen += len(batch)
        return loss

    def after_step(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def progress(self, state: dict[str, Any]) -> str:
        n = max(self.seen, 1)
        return (f"loss {self.run_loss / n:.4f} acc {self.run_acc / n:.3f} "
                f"best dev {max(state['best'], 0):.4f}")

    def evaluate(self, state: dict[str, Any]) -> str:
        m = evaluate(self.judged, self.dev_ids, self.ds.dev.labels)
        n = max(self.seen, 1)
        row = {"step": state["step"], "epoch": state["step"] / self.epoch_steps,
               "elapsed_s": round(state["elapsed"], 1),
               "train_loss": self.run_loss / n, "train_acc": self.run_acc / n,
               "dev_loss": m.loss, "dev_acc": m.accuracy, "dev_macro_f1": m.macro_f1}
        state["history"].append(row)
        self.run_loss = self.run_acc = 0.0
        self.seen = 0
        better = m.accuracy > state["best"]
        if better:
            state.update(best=m.accuracy, best_step=state["step"], bad_evals=0,
                         best_dev=m.to_dict())
            self._save_best(state)
        else:
            state["bad_evals"] += 1
            if self.args.patience and state["bad_evals"] >= self.args.patience:
                state["stopped"] = f"early stop: no dev gain in {self.args.patience} evals"
        return (f"step {state['step']} epoch {row['epoch']:.2f}: train loss "
                f"{row['train_loss']:.4f} acc {row['train_acc']:.4f} | dev loss "
                f"{m.loss:.4f} acc {m.accuracy:.4f} F1 {m.macro_f1:.4f}" + (" *" if better else ""))

    def _save_best(self, state: dict[str, Any]) -> None:
        save_model(self.out / "model.pt", self.judged, self.ds.labels, self.ds.name,
                   {"train_args": asdict(self.args), "dev_source": self.ds.dev_source,
                    "best_step": state["best_step"]})

    def checkpoint_entries(self) -> dict[str, Any]:
        return {"ema": self.ema.state_dict() if self.ema is not None else None}

    def load_checkpoint_entries(self, ck: dict[str, Any], state: dict[str, Any]) -> None:
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"])

    def finish(self, state: dict[str, Any]) -> dict[str, Any]:
        last = state["history"][-1]["step"] if state["history"] else -1
        if last != state["step"] and state["step"] == self.total:
            self.log(self.evaluate(state))  # the planned end is an evaluation point
        elif last != state["step"] or not (self.out / "model.pt").exists():
            # Cut between evaluations (budget): judge the last weights too, off the history.
            m = evaluate(self.judged, self.dev_ids, self.ds.dev.labels)
            if m.accuracy > state["best"]:
                state.update(best=m.accuracy, best_step=state["step"], best_dev=m.to_dict())
                self._save_best(state)
        self.log(state["stopped"] or "finished the planned steps")
        return self._report(state)

    def _report(self, state: dict[str, Any]) -> dict[str, Any]:
        """Dev metrics of the best model; into model.pt and metrics.json. Training never reads
        the test split: `hil model test` does, once, after the choice (docs/model-selection.md)."""
        ds, args = self.ds, self.args
        best, meta = load_model(self.out / "model.pt")
        result: dict[str, Any] = {
            "dataset": ds.name, "steps": state["step"], "best_step": state["best_step"],
            "elapsed_s": state["elapsed"], "stopped": state["stopped"] or "planned steps done",
            # the best model's dev metrics, kept when it was judged (a second pass over dev
            # costs minutes on long texts)
            "dev": state.get("best_dev") or evaluate(best, self.dev_ids,
                                                     ds.dev.labels).to_dict(),
            "history": state["history"], "args": asdict(args)}
        meta["metrics"] = {"dev": result["dev"]}
        torch.save(meta, self.out / "model.pt")
        (self.out / "metrics.json").write_text(json.dumps(result, indent=1))
        return result

    def result(self, state: dict[str, Any]) -> dict[str, Any]:
        return json.loads((self.out / "metrics.json").read_text())


def finetune(args: TrainArgs, log: Callable[[str], None] = print,
             loss_fn: Callable[..., torch.Tensor] | None = None) -> dict[str, Any]:
    """Fine-tune (or train from scratch) a classifier; returns the final metrics dict.

    Resumable with args.resume, within args.budget_min minutes summed over all invocations
    (the policy and its reasons: hil/model/loop.py). `loss_fn(model, batch_indices, logits,
    labels, step)` replaces the cross-entropy (the distillation hook of hil/model/distill.py);
    it must be a pure function of its arguments so that --resume stays exact."""
    task = Finetune(args, log, loss_fn)
    return run(task, task.plan(), log)
