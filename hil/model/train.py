"""Training: masked-LM pretraining on the corpus and fine-tuning on a labelled dataset.

Everything a long run on a shared two-core machine needs: fixed seeds, AdamW with linear warmup
and cosine decay, dropout and label smoothing, early stopping on dev, a wall-time budget, a
checkpoint every few minutes that `--resume` continues from (the batch order is a pure function of
the seed and epoch, so a resumed run sees exactly the batches it would have seen), and progress
as a rich bar on a terminal or plain lines in a log.

Output directory of a fine-tune:
  model.pt        the best-on-dev model in the shipped format (see `save_model`)
  checkpoint.pt   full training state (model, optimizer, scheduler, position, history)
  metrics.json    history of train loss/accuracy and dev metrics, test metrics at the end
  tokenizer.json  the tokenizer the ids came from
Pretraining writes `pretrained.pt` ({"config", "state_dict", "mlm_head"}) instead of model.pt.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hil.model import data as D
from hil.model.embbert import EmbBERT, EmbBERTConfig, RMSNorm
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
    budget_min: float = 0.0  # wall-time budget in minutes, 0 = none
    patience: int = 4  # dev evaluations without improvement before stopping; 0 = never
    eval_every: int = 0  # steps between dev evaluations; 0 = once per epoch
    checkpoint_min: float = 3.0
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


def remaining_batches(state: dict[str, Any], total: int, steps_per_epoch: int,
                      lengths: Sequence[int], batch_size: int, seed: int
                      ) -> Iterator[list[int]]:
    """The batches still to train on, from the step `state` has reached to `total`: epoch e
    uses its own shuffled order (seed * 1000 + e), so a resumed run sees exactly the batches an
    uninterrupted one would. The caller advances state["step"] once per batch; a run whose
    state says it stopped (early stop, carried over a resume) gets no more batches."""
    while state["step"] < total and not state.get("stopped"):
        epoch, pos = divmod(state["step"], steps_per_epoch)
        for b in D.batch_order(lengths, batch_size, True, seed * 1000 + epoch)[pos:]:
            if state["step"] >= total:
                return
            yield b


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


class Progress:
    """A rich progress bar on a terminal, one plain line every `every` seconds otherwise."""

    def __init__(self, total: int, desc: str, every: float = 30.0) -> None:
        self.total, self.desc, self.every = total, desc, every
        self.tty = sys.stdout.isatty()
        self.last = 0.0
        self.bar: Any = None
        if self.tty:
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
                                    TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self.bar.start()
            self.task = self.bar.add_task(desc, total=total, info="")

    def update(self, step: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)
        elif time.monotonic() - self.last >= self.every or step >= self.total:
            self.last = time.monotonic()
            print(f"{self.desc} step {step}/{self.total} {info}", flush=True)

    def log(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.console.print(msg)
        else:
            print(msg, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a torn checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def model_config(args: TrainArgs, num_labels: int) -> EmbBERTConfig:
    return EmbBERTConfig(vocab_size=args.vocab_size, max_len=args.max_len, emb_dim=args.emb_dim,
                         dim=args.dim, n_layers=args.n_layers, kernel=args.kernel,
                         num_labels=num_labels, dropout=args.dropout)


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
    _atomic_save(obj, path)


def load_model(path: str | Path) -> tuple[EmbBERT, dict[str, Any]]:
    """Load a shipped-format model.pt -> (model in eval mode, the whole checkpoint dict)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = EmbBERTConfig(**ckpt["config"])
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


def finetune(args: TrainArgs, log: Callable[[str], None] = print,
             loss_fn: Callable[..., torch.Tensor] | None = None) -> dict[str, Any]:
    """Fine-tune (or train from scratch) a classifier; returns the final metrics dict.

    `loss_fn(model, batch_indices, logits, labels, step)` replaces the cross-entropy (the
    distillation hook of hil/model/distill.py); it must be a pure function of its arguments
    so that --resume stays exact."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)
    tok = Tokenizer.from_file(args.tokenizer)
    shutil.copyfile(args.tokenizer, out / "tokenizer.json")
    ds = D.load_dataset(args.data or "", args.dev_fraction, args.seed)
    train_ids = D.encode(tok, ds.train.texts, args.max_len)
    dev_ids = D.encode(tok, ds.dev.texts, args.max_len)
    cfg = model_config(args, len(ds.labels))
    model = EmbBERT(cfg)
    if args.init and not args.resume:
        n = len(load_encoder_weights(model, args.init))
        log(f"initialised {n} encoder tensors from {args.init}")
    opt = make_optimizer(model, args.lr, args.weight_decay)
    ema = weight_average(model, args.ema) if args.ema else None
    steps_per_epoch = math.ceil(len(train_ids) / args.batch_size)
    total = max(1, int(args.epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, args.warmup,
                                                                 args.min_lr_ratio))
    eval_every = args.eval_every or steps_per_epoch
    state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "best": -1.0, "best_step": 0,
                             "bad_evals": 0, "history": [], "stopped": ""}
    ckpt_path = out / "checkpoint.pt"
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
        state = ck["state"]
        torch.set_rng_state(ck["torch_rng"])
        if state["stopped"].startswith("budget"):
            state["stopped"] = ""  # a new invocation gets a new budget
        log(f"resumed from {ckpt_path} at step {state['step']}")
    log(f"{ds.name}: train {len(ds.train)}, dev {len(ds.dev)} ({ds.dev_source}), "
        f"test {len(ds.test) if ds.test else 0}; {len(ds.labels)} labels; "
        f"{model.num_params():,} parameters; {total} steps")

    def checkpoint() -> None:
        _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                      "scheduler": sched.state_dict(), "state": state, "args": asdict(args),
                      "torch_rng": torch.get_rng_state(),
                      "ema": ema.state_dict() if ema is not None else None}, ckpt_path)

    # What is judged on dev and shipped: the averaged weights when --ema is on.
    judged = ema.module if ema is not None else model

    def extra() -> dict[str, Any]:
        return {"train_args": asdict(args), "dev_source": ds.dev_source,
                "best_step": state["best_step"]}

    bar = Progress(total, f"train {ds.name}")
    start = time.monotonic() - state["elapsed"]  # elapsed accumulates over resumes
    session = last_ckpt = time.monotonic()  # the budget is per invocation
    run_loss = run_acc = 0.0
    seen = 0
    lengths = [len(s) for s in train_ids]
    for b in remaining_batches(state, total, steps_per_epoch, lengths, args.batch_size,
                               args.seed):
        model.train()
        seqs = [train_ids[i] for i in b]
        if args.token_drop:
            seqs = drop_tokens(seqs, args.token_drop, args.seed * 1_000_003 + state["step"])
        x = D.pad(seqs)
        y = torch.tensor([ds.train.labels[i] for i in b])
        logits = model(x)
        loss = (loss_fn(model, b, logits, y, state["step"]) if loss_fn else
                F.cross_entropy(logits, y, label_smoothing=args.label_smoothing))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        state["step"] += 1
        k = len(b)
        run_loss += loss.item() * k
        run_acc += (logits.argmax(-1) == y).sum().item()
        seen += k
        state["elapsed"] = time.monotonic() - start
        bar.update(state["step"], f"loss {run_loss / seen:.4f} acc {run_acc / seen:.3f} "
                                  f"best dev {max(state['best'], 0):.4f}")
        if state["step"] % eval_every == 0 or state["step"] == total:
            m = evaluate(judged, dev_ids, ds.dev.labels)
            row = {"step": state["step"], "epoch": state["step"] / steps_per_epoch,
                   "elapsed_s": round(state["elapsed"], 1),
                   "train_loss": run_loss / seen, "train_acc": run_acc / seen,
                   "dev_loss": m.loss, "dev_acc": m.accuracy, "dev_macro_f1": m.macro_f1}
            state["history"].append(row)
            run_loss = run_acc = 0.0
            seen = 0
            better = m.accuracy > state["best"]
            bar.log(f"step {state['step']} epoch {row['epoch']:.2f}: train loss "
                    f"{row['train_loss']:.4f} acc {row['train_acc']:.4f} | dev loss "
                    f"{m.loss:.4f} acc {m.accuracy:.4f} F1 {m.macro_f1:.4f}"
                    + (" *" if better else ""))
            if better:
                state.update(best=m.accuracy, best_step=state["step"], bad_evals=0,
                             best_dev=m.to_dict())
                save_model(out / "model.pt", judged, ds.labels, ds.name, extra())
            else:
                state["bad_evals"] += 1
                if args.patience and state["bad_evals"] >= args.patience:
                    state["stopped"] = f"early stop: no dev gain in {args.patience} evals"
        if args.budget_min and time.monotonic() - session > args.budget_min * 60:
            state["stopped"] = state["stopped"] or f"budget {args.budget_min} min reached"
        if time.monotonic() - last_ckpt > args.checkpoint_min * 60 or state["stopped"]:
            checkpoint()
            last_ckpt = time.monotonic()
        if state["stopped"]:
            break
    bar.close()
    if not (out / "model.pt").exists() or state["step"] % eval_every:
        # The budget cut the run between evaluations: judge the last weights too.
        m = evaluate(judged, dev_ids, ds.dev.labels)
        if m.accuracy > state["best"]:
            state.update(best=m.accuracy, best_step=state["step"], best_dev=m.to_dict())
            save_model(out / "model.pt", judged, ds.labels, ds.name, extra())
    checkpoint()
    log(state["stopped"] or "finished the planned steps")
    best, meta = load_model(out / "model.pt")
    result: dict[str, Any] = {"dataset": ds.name, "steps": state["step"],
                              "best_step": state["best_step"], "elapsed_s": state["elapsed"],
                              "stopped": state["stopped"] or "planned steps done",
                              # the best model's dev metrics, kept when it was judged (a second
                              # pass over dev costs minutes on long texts)
                              "dev": state.get("best_dev") or evaluate(best, dev_ids,
                                                                       ds.dev.labels).to_dict(),
                              "history": state["history"], "args": asdict(args)}
    if ds.test is not None:
        test = evaluate(best, D.encode(tok, ds.test.texts, args.max_len), ds.test.labels)
        result["test"] = test.to_dict()
        log(f"test: accuracy {test.accuracy:.4f} macro-F1 {test.macro_f1:.4f} (n={test.n})")
    meta["metrics"] = {k: result[k] for k in ("dev", "test") if k in result}
    torch.save(meta, out / "model.pt")
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    return result


# ---- masked-LM pretraining ----------------------------------------------------------------------
def pretrain(args: TrainArgs, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Masked-LM pretraining of the encoder on a corpus; writes pretrained.pt."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)
    tok = Tokenizer.from_file(args.tokenizer)
    docs = D.read_corpus(Path(args.corpus or ""), args.corpus_docs or None)
    held = max(1, min(2000, len(docs) // 50))  # held-out docs for an honest MLM loss
    ids = D.encode(tok, docs, args.max_len)
    ids = [s for s in ids if len(s) > 2]
    dev_ids, train_ids = ids[:held], ids[held:]
    cfg = model_config(args, num_labels=2)
    model = EmbBERT(cfg)
    head = MLMHead(model)
    params = list(model.parameters()) + [p for n, p in head.named_parameters()
                                         if not n.startswith("tok.")]
    opt = make_optimizer(nn.ParameterList(params), args.lr, args.weight_decay)
    steps_per_epoch = math.ceil(len(train_ids) / args.batch_size)
    total = max(1, int(args.epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, args.warmup,
                                                                 args.min_lr_ratio))
    gen = torch.Generator().manual_seed(args.seed)
    state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "history": [], "tokens": 0}
    ckpt_path = out / "checkpoint.pt"
    if args.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        head.load_state_dict(ck["head"], strict=False)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        state = ck["state"]
        gen.set_state(ck["gen"])
        log(f"resumed from {ckpt_path} at step {state['step']}")
    log(f"pretraining on {len(train_ids):,} docs ({held} held out), {total} steps, "
        f"max_len {args.max_len}")

    def mlm_loss(x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, int]:
        inputs, targets = D.mask_tokens(x, cfg.vocab_size, g, args.mlm_prob)
        h = model.encode(inputs, x != 0)
        sel = targets != -100
        if not sel.any():
            return torch.zeros((), requires_grad=True), 0
        return F.cross_entropy(head(h[sel]), targets[sel]), int(sel.sum())

    @torch.no_grad()
    def dev_loss() -> float:
        model.eval()
        g = torch.Generator().manual_seed(12345)  # same masks every evaluation
        tot = n = 0.0
        for _, x, _ in D.iter_batches(dev_ids, [0] * len(dev_ids), 128, shuffle=False):
            loss, k = mlm_loss(x, g)
            tot += loss.item() * k
            n += k
        return tot / max(n, 1)

    def checkpoint() -> None:
        _atomic_save({"model": model.state_dict(), "head": head.own_state(),
                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                      "state": state, "gen": gen.get_state(), "args": asdict(args)}, ckpt_path)
        _atomic_save({"config": cfg.to_dict(), "state_dict": model.state_dict(),
                      "mlm_head": head.own_state(), "history": state["history"],
                      "args": asdict(args)}, out / "pretrained.pt")

    bar = Progress(total, "pretrain")
    start = time.monotonic() - state["elapsed"]  # elapsed accumulates over resumes
    session = last_ckpt = time.monotonic()  # the budget is per invocation
    eval_every = args.eval_every or 500
    run = seen = 0.0
    stopped = ""
    lengths = [len(s) for s in train_ids]
    for b in remaining_batches(state, total, steps_per_epoch, lengths, args.batch_size,
                               args.seed):
        model.train()
        x = D.pad([train_ids[i] for i in b])
        loss, k = mlm_loss(x, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, args.grad_clip or 1e9)
        opt.step()
        sched.step()
        state["step"] += 1
        state["tokens"] += int((x != 0).sum())
        run += loss.item() * k
        seen += k
        state["elapsed"] = time.monotonic() - start
        tps = state["tokens"] / max(state["elapsed"], 1e-9)
        bar.update(state["step"], f"mlm loss {run / max(seen, 1):.3f} {tps:,.0f} tok/s")
        if state["step"] % eval_every == 0:
            dl = dev_loss()
            state["history"].append({"step": state["step"], "elapsed_s": state["elapsed"],
                                     "train_loss": run / max(seen, 1), "dev_loss": dl,
                                     "tokens": state["tokens"]})
            bar.log(f"step {state['step']}: train mlm {run / max(seen, 1):.4f} "
                    f"held-out mlm {dl:.4f} ({tps:,.0f} tok/s)")
            run = seen = 0.0
        if args.budget_min and time.monotonic() - session > args.budget_min * 60:
            stopped = f"budget {args.budget_min} min reached"
        if time.monotonic() - last_ckpt > args.checkpoint_min * 60 or stopped:
            checkpoint()
            last_ckpt = time.monotonic()
        if stopped:
            break
    bar.close()
    final = dev_loss()
    state["history"].append({"step": state["step"], "elapsed_s": state["elapsed"],
                             "dev_loss": final, "tokens": state["tokens"]})
    checkpoint()
    log(f"{stopped or 'planned steps done'}; held-out MLM loss {final:.4f}")
    result = {"steps": state["step"], "elapsed_s": state["elapsed"], "tokens": state["tokens"],
              "held_out_mlm_loss": final, "history": state["history"], "args": asdict(args)}
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    return result
