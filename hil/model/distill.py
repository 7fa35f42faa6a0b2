"""Distillation from an offline teacher (hil/model/teacher.py) into EmbBERT, for `hil train
--teacher NAME`.

Why: EmbBERT from scratch plateaus far below the paper (nlu_scenario 84% vs 94%), and masked-LM
pretraining on two shared cores plateaus near unigram loss. A pretrained sentence encoder holds
the knowledge that pretraining would have given; two cheap ways to pass it on:

(a) soft logits. The teacher (frozen MiniLM + a per-dataset head fitted on its cached sentence
    embeddings) labels the training set and unlabelled corpus text (the transfer set); EmbBERT
    learns from hard labels mixed with the teacher's temperature-softened distribution:
      loss = (1-alpha) CE(y) + alpha T^2 KL(p_T^teacher || p_T^student)   on labelled batches
           + w T^2 KL(...)                                                 on a transfer batch
(b) representation distillation as pretraining: EmbBERT's [CLS] state, through a projection that
    exists only in training, regresses the teacher's sentence embedding (cosine loss) on corpus +
    training text (hil/model/rep.py); then fine-tuning starts from that encoder (pretrained.pt,
    the format `hil train --init` reads).

Both run the one training loop of hil/model/loop.py (budget over all invocations, checkpoints,
bit-exact --resume): (b) as its own task, (a) through the `loss_fn` hook of
hil.model.train.finetune (early stopping on dev, the model.pt format that `hil model ship` and
hil.quant read).
Nothing of the teacher reaches model.pt: the student keeps its own architecture.

torch is imported inside functions: `hil --help` imports this module to register the options.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hil.model import data as D
from hil.model.ngram_teacher import fit_ngram_teacher, later_windows, visible_texts
from hil.model.teacher import DEFAULT_CACHE, Teacher, cached_embeddings, fit_head, head_logits

if TYPE_CHECKING:
    import torch

    from hil.model.embbert import EmbBERT
    from hil.model.train import TrainArgs

DEFAULT_CORPUS = D.SHARED_DATASETS / "pretrain" / "corpus.txt.gz"
HEAD_VERSION = "logreg-lbfgs-1"  # part of the head cache key: a new fitting method refits


@dataclass
class DistillArgs:
    """Teacher-side knobs, recorded beside the run (distill.json) so it can be repeated."""

    teacher: str = "minilm"
    teacher_max_len: int = 128  # teacher tokens (its own WordPiece); long reviews are cut
    cache_dir: str = str(DEFAULT_CACHE)
    corpus: str = str(DEFAULT_CORPUS)
    transfer_docs: int = 8000  # unlabelled corpus docs as transfer set; 0 = none
    transfer_max_words: int = 0  # keep corpus docs of at most this many words; 0 = any
    transfer_data: str = ""  # in-domain transfer text: "clinc150,banking77:5000" (train splits)
    kd: bool = True  # (a) soft-logit distillation
    alpha: float = 0.7  # weight of the soft loss on labelled batches
    temperature: float = 2.0
    transfer_weight: float = 1.0
    rep_min: float = 0.0  # (b) minutes of representation distillation (a cap when rep_steps)
    rep_steps: int = 0  # (b) steps; machine-independent, so one command repeats the same model
    rep_lr: float = 2e-3
    teacher_test: bool = False  # score the teacher on test too: off, test is read once, later
    ngram_features: str = "both"  # the n-gram teacher's features (--teacher ngram)
    window_texts: int = 0  # later windows of long training texts as transfer text; 0 = none
    transfer_batching: str = "uniform"  # or "length": each transfer batch from one length bucket
    transfer_exclude: str = ""  # other datasets whose every text stays out of the transfer set


@dataclass
class TeacherTargets:
    """What the student learns from: teacher logits and embeddings, aligned with the texts."""

    train_logits: np.ndarray  # (N_train, C)
    train_emb: np.ndarray  # (N_train, H)
    transfer_texts: list[str]
    transfer_logits: np.ndarray  # (N_transfer, C)
    transfer_emb: np.ndarray  # (N_transfer, H)
    report: dict[str, Any]  # teacher accuracy on dev/test, sizes, seconds


def transfer_texts(corpus: str | Path, n: int, max_words: int = 0,
                   exclude: Sequence[str] = ()) -> list[str]:
    """The first `n` corpus documents (the corpus is shuffled with a fixed seed) of at most
    `max_words` words, minus every document that matches a text of `exclude` up to case and
    punctuation (`text_key`).

    Callers pass the target dataset's train, dev and test texts: train is labelled already,
    and a dev or test text seen as transfer text (its teacher embedding regressed in (b), its
    teacher labels in (a)) would leak into the choice on dev and the score on test. Issue #18
    found 11 of sms_spam's 412 dev messages in the corpus transfer set when only train was
    excluded, and exactly.
    """
    if n <= 0:
        return []
    skip = {text_key(t) for t in exclude}
    out: list[str] = []
    for doc in D.read_corpus(Path(corpus)):
        if (max_words and len(doc.split()) > max_words) or text_key(doc) in skip:
            continue
        out.append(doc)
        if len(out) >= n:
            break
    return out


def excluded_texts(names: str) -> list[str]:
    """Every text of every split of the datasets named in "sms_spam,imdb".

    Why: an encoder from (b) is shared (sms_spam starts from nlu_scenario's); the transfer set
    of the run that trains it must hold no dev or test text of any dataset it will serve.
    """
    out: list[str] = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        folder = D.resolve_dataset(name)
        for split in ("train", "dev", "validation", "test"):
            f = D.find_split(folder, split)
            if f is not None:
                out += D.read_split(f).texts
    return out


def parse_transfer_data(spec: str) -> list[tuple[str, int]]:
    """"clinc150,banking77:5000" -> [("clinc150", 0), ("banking77", 5000)] (0 = all texts)."""
    out: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, cap = part.partition(":")
        out.append((name, int(cap) if cap else 0))
    return out


def text_key(text: str) -> str:
    """Case- and punctuation-insensitive key: 'Current time, please!' == 'current time please'."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def dataset_transfer(ds: D.Dataset, spec: str, emb: Callable[[Sequence[str]], np.ndarray],
                     log: Callable[[str], None] = print, exclude: Sequence[str] = ()
                     ) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """In-domain unlabelled transfer text: the *train* split of each named dataset (its labels
    are ignored; dev and test splits are never read), minus every text that matches a text of
    the target dataset's train, dev or test split up to case and punctuation (the key the shared
    pretraining corpus was filtered with: clinc150 train holds 'current time, please', an
    nlu_scenario test sentence but for a comma), the first `cap` texts of each source.

    Why: the pretraining corpus is mostly long reviews and articles, while an intent or SMS
    student needs short commands and messages; other intent datasets (clinc150, banking77) or
    tweets are the unlabelled text nearest to them. Only the kept texts are embedded (tweets
    embed at ~25/s on a busy core: a cap is what keeps this affordable).
    """
    block = {text_key(t) for t in [*ds.train.texts, *ds.dev.texts,
                                   *(ds.test.texts if ds.test else ()), *exclude]}
    texts: list[str] = []
    embs: list[np.ndarray] = []
    counts: dict[str, int] = {}
    for name, cap in parse_transfer_data(spec):
        src_dir = D.resolve_dataset(name)
        if src_dir.resolve() == ds.path.resolve():
            raise ValueError(f"--transfer-data {name}: the target dataset itself")
        f = D.find_split(src_dir, "train")
        if f is None:
            raise FileNotFoundError(f"{src_dir} has no train split")
        src = list(dict.fromkeys(D.read_split(f).texts))  # source order, duplicates dropped
        keep = [t for t in src if text_key(t) not in block]
        keep = keep[:cap] if cap else keep
        texts += keep
        embs.append(emb(keep))
        counts[name] = len(keep)
        log(f"transfer text from {name} train: {len(keep):,} of {len(src):,}")
    dim = embs[0].shape[1] if embs else 0
    return texts, (np.concatenate(embs) if embs else np.zeros((0, dim), np.float32)), counts


def parse_teachers(spec: str) -> tuple[str | None, bool]:
    """"minilm" -> ("minilm", False); "ngram" -> (None, True); "minilm,ngram" -> both.

    At most one sentence-encoder teacher (a TEACHERS name or a local HF dir) and the n-gram
    teacher (hil/model/ngram_teacher.py)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    encoders = [p for p in parts if p != "ngram"]
    if not parts or len(encoders) > 1 or len(set(parts)) != len(parts):
        raise ValueError(f"--teacher {spec!r}: give one encoder teacher, 'ngram', or both "
                         "('minilm,ngram')")
    return (encoders[0] if encoders else None), "ngram" in parts


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def prepare_teacher(ds: D.Dataset, dargs: DistillArgs, threads: int = 2, seed: int = 0,
                    log: Callable[[str], None] = print, tok: Any = None, max_len: int = 0
                    ) -> TeacherTargets:
    """The teacher's targets for the training split and the transfer texts.

    Encoder teacher: embed train/dev(/test)/transfer texts (cached), fit a head on train, pick it
    on dev (cached too). n-gram teacher: out-of-fold logits on train (hil/model/ngram_teacher.py),
    fed the span the student sees when `tok` is given. Each teacher is temperature-calibrated on
    dev; with both, their log-probabilities are mixed with the weight that is best on dev
    (accuracy, then NLL) and the mix is calibrated again.
    """
    t0 = time.monotonic()
    enc_name, use_ngram = parse_teachers(dargs.teacher)
    if dargs.window_texts and (tok is None or not use_ngram):
        raise ValueError("--window-texts needs the n-gram teacher (--teacher ngram or "
                         "minilm,ngram): only its out-of-fold models can label them honestly")
    has_test = dargs.teacher_test and ds.test is not None
    texts = transfer_texts(dargs.corpus, dargs.transfer_docs, dargs.transfer_max_words,
                           [*ds.train.texts, *ds.dev.texts, *(ds.test.texts if ds.test else ()),
                            *excluded_texts(dargs.transfer_exclude)])
    report: dict[str, Any] = {"teacher": dargs.teacher, "transfer_corpus_n": len(texts)}
    teacher = Teacher(enc_name, threads) if enc_name else None

    def emb(xs: Sequence[str]) -> np.ndarray:
        if teacher is None:
            return np.zeros((len(xs), 0), np.float32)
        return cached_embeddings(teacher, xs, dargs.teacher_max_len, dargs.cache_dir, log=log)

    xe = emb(texts)
    if dargs.transfer_data:
        dt, de, counts = dataset_transfer(ds, dargs.transfer_data, emb, log,
                                          excluded_texts(dargs.transfer_exclude))
        texts, xe = texts + dt, np.concatenate([xe, de.astype(np.float32)])
        report["transfer_data"] = counts
    source = [-1] * len(texts)
    if dargs.window_texts:
        wins, wsrc = later_windows(tok, ds.train.texts, max_len, dargs.window_texts)
        texts, xe, source = texts + wins, np.concatenate([xe, emb(wins)]), source + wsrc
        report["window_texts"] = len(wins)
    labels = {"train": np.array(ds.train.labels), "dev": np.array(ds.dev.labels)}
    if has_test:
        labels["test"] = np.array(ds.test.labels)  # type: ignore[union-attr]
    # Per teacher: calibrated log-probabilities for train, dev, test, transfer.
    parts: dict[str, dict[str, np.ndarray]] = {}
    tr = np.zeros((len(ds.train), 0), np.float32)
    if teacher is not None:
        tr, dv = emb(ds.train.texts), emb(ds.dev.texts)
        head, dev_acc = _encoder_head(teacher, ds, dargs, seed, tr, dv, log)
        tau = calibrate_temperature(head_logits(head, dv), ds.dev.labels)
        lp = {"train": tr, "dev": dv, "transfer": xe}
        if has_test:
            lp["test"] = emb(ds.test.texts)  # type: ignore[union-attr]
        parts[teacher.name] = {k: _log_softmax(head_logits(head, v) / tau) for k, v in lp.items()}
        report["identity"] = teacher.identity
        report["head"] = {"hidden": head["hidden"], "wd": head["wd"]}
        report[teacher.name] = {"dev_acc": dev_acc, "calibration_tau": tau}
    if use_ngram:
        parts["ngram"], report["ngram"] = _ngram_part(ds, dargs, texts, source, has_test, seed,
                                                      log, tok, max_len)
    mixed, weight = _mix(parts, labels["dev"])
    if weight is not None:
        report["mix_weight"] = weight
    for split in ("train", "dev", "test"):
        if split in mixed:
            acc = float((mixed[split].argmax(1) == labels[split]).mean())
            report[f"{split}_acc" if split != "train" else "train_acc_shown"] = acc
    if has_test:
        report["test_n"] = len(ds.test)  # type: ignore[arg-type]
        log(f"teacher {dargs.teacher}: dev acc {report['dev_acc']:.4f}, "
            f"test acc {report['test_acc']:.4f}")
    report.update(transfer_n=len(texts), seconds=round(time.monotonic() - t0, 1))
    return TeacherTargets(mixed["train"], tr, texts, mixed["transfer"], xe, report)


def _ngram_part(ds: D.Dataset, dargs: DistillArgs, texts: list[str], source: list[int],
                has_test: bool, seed: int, log: Callable[[str], None], tok: Any, max_len: int
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The n-gram teacher's calibrated log-probabilities per split (out of fold on train) and
    its report entry; it reads the span the student sees when `tok` is given."""
    def view(xs: Sequence[str]) -> list[str]:
        return visible_texts(tok, xs, max_len) if tok is not None else list(xs)

    fit = fit_ngram_teacher(
        view(ds.train.texts), ds.train.labels, view(ds.dev.texts), ds.dev.labels,
        len(ds.labels), test=view(ds.test.texts) if has_test else None,  # type: ignore
        extra=view(texts), extra_source=source, features=dargs.ngram_features,
        seed=seed, cache_dir=dargs.cache_dir, log=log)
    tau = calibrate_temperature(fit.dev, ds.dev.labels)
    lp = {"train": fit.train, "dev": fit.dev, "transfer": fit.extra}
    if fit.test is not None:
        lp["test"] = fit.test
    return ({k: _log_softmax(v / tau) for k, v in lp.items()},
            {"features": dargs.ngram_features, "C": fit.c, "dev_acc": fit.dev_acc,
             "oof_train_acc": fit.oof_acc, "calibration_tau": tau, "seconds": fit.seconds})


def _encoder_head(teacher: Teacher, ds: D.Dataset, dargs: DistillArgs, seed: int,
                  tr: np.ndarray, dv: np.ndarray, log: Callable[[str], None]
                  ) -> tuple[dict[str, Any], float]:
    """The encoder teacher's head: fitted on train, picked on dev, cached by texts and labels."""
    key = hashlib.sha256(json.dumps([HEAD_VERSION, teacher.identity, dargs.teacher_max_len,
                                     seed, ds.train.labels, ds.dev.labels, len(ds.labels)]).encode()
                         + tr.tobytes() + dv.tobytes()).hexdigest()[:20]
    head_path = Path(dargs.cache_dir) / f"head-{key}.json"
    if head_path.exists():
        saved = json.loads(head_path.read_text())
        log(f"teacher head from cache {head_path} (dev acc {saved['dev_acc']:.4f})")
        return _head_from_json(saved["head"]), saved["dev_acc"]
    head, dev_acc = fit_head(tr, ds.train.labels, dv, ds.dev.labels, len(ds.labels), seed, log)
    head_path.parent.mkdir(parents=True, exist_ok=True)
    head_path.write_text(json.dumps({"head": _head_to_json(head), "dev_acc": dev_acc}))
    return head, dev_acc


MIX_WEIGHTS = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)


def _mix(parts: dict[str, dict[str, np.ndarray]], dev_y: np.ndarray
         ) -> tuple[dict[str, np.ndarray], float | None]:
    """One teacher: its calibrated log-probabilities. Two: w * first + (1 - w) * second (a
    product of experts), w from MIX_WEIGHTS best on dev accuracy then dev NLL, recalibrated.
    Returns (log-probabilities per split, w or None)."""
    if len(parts) == 1:
        return next(iter(parts.values())), None
    a, b = parts.values()
    best: tuple[float, float, float] = (-1.0, 0.0, 0.0)
    for w in MIX_WEIGHTS:
        z = _log_softmax(w * a["dev"] + (1 - w) * b["dev"])
        acc = float((z.argmax(1) == dev_y).mean())
        nll = float(-z[np.arange(len(dev_y)), dev_y].mean())
        if (acc, -nll) > (best[0], -best[1]):
            best = (acc, nll, w)
    w = best[2]
    mixed = {k: w * a[k] + (1 - w) * b[k] for k in a}
    tau = calibrate_temperature(mixed["dev"], list(dev_y))
    return {k: _log_softmax(v / tau) for k, v in mixed.items()}, w


def calibrate_temperature(logits: np.ndarray, labels: Sequence[int]) -> float:
    """Temperature scaling (Guo et al. 2017): the tau minimising dev NLL of softmax(logits/tau).

    Why: a logistic head on unit vectors can be far over- or under-confident, and the student
    then learns from soft targets that are too peaked (little dark knowledge) or too flat. After
    calibration the distillation temperature means the same thing on every dataset.
    """
    y = np.asarray(labels)
    best = (float("inf"), 1.0)
    for tau in np.exp(np.linspace(np.log(0.25), np.log(16.0), 41)):
        nll = float(-_log_softmax(logits / tau)[np.arange(len(y)), y].mean())
        if nll < best[0]:
            best = (nll, float(tau))
    return round(best[1], 4)


def _head_to_json(head: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in head.items() if k != "state"} | {
        "state": {k: v.tolist() for k, v in head["state"].items()}}


def _head_from_json(d: dict[str, Any]) -> dict[str, Any]:
    import torch

    return d | {"state": {k: torch.tensor(v) for k, v in d["state"].items()}}


def soft_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 KL(softmax(teacher/T) || softmax(student/T)), batch mean (Hinton et al. 2015): the
    T^2 keeps gradient sizes comparable across temperatures.

    The teacher is clamped to >= -1e4: the n-gram teacher's log-probabilities hold -inf for a
    few texts, and kl_div's value is then exp(-inf) * (-inf - s) = nan (the gradient, -exp(t),
    is 0 either way, so training was right but the logged loss read nan). exp(-1e4) is 0 in
    float32: value and gradient are those of a probability of 0."""
    import torch.nn.functional as F

    t = temperature
    teacher = teacher.clamp_min(-1e4)
    return F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1),
                    reduction="batchmean", log_target=True) * t * t


def length_buckets(lengths: Sequence[int], size: int) -> tuple[list[list[int]], list[int]]:
    """Indices sorted by length, cut into buckets of `size`; and each index's bucket.

    Why: a transfer batch is padded to its longest text. With imdb's 256-token windows mixed
    among one-line movie snippets, nearly every uniformly drawn batch holds one window, so every
    transfer step costs a full 256-token forward and backward pass.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    buckets = [order[i:i + size] for i in range(0, len(order), size)]
    where = [0] * len(lengths)
    for k, bucket in enumerate(buckets):
        for i in bucket:
            where[i] = k
    return buckets, where


def draw_transfer(n: int, batch: int, g: torch.Generator,
                  buckets: tuple[list[list[int]], list[int]] | None = None) -> list[int]:
    """`batch` transfer indices out of `n`, uniformly, or (with `buckets`) all from one length
    bucket: an anchor drawn uniformly picks the bucket, then the batch is drawn uniformly inside
    it. Each text is still drawn with probability 1/n (the bucket of size m is picked with
    probability m/n, the text inside it with 1/m), so the transfer loss has the same expectation.
    """
    import torch

    if buckets is None:
        return torch.randint(n, (batch,), generator=g).tolist()
    members, where = buckets
    bucket = members[where[int(torch.randint(n, (1,), generator=g))]]
    return [bucket[i] for i in torch.randint(len(bucket), (batch,), generator=g).tolist()]


def kd_loss_fn(targets: TeacherTargets, dargs: DistillArgs, args: TrainArgs,
               encode: Callable[[Sequence[str]], list[list[int]]]
               ) -> Callable[..., torch.Tensor]:
    """The `loss_fn` hook of hil.model.train.finetune for (a).

    The transfer batch of step s is drawn by a generator seeded with (seed, s), so a resumed run
    sees the same transfer batches as an uninterrupted one.
    """
    import torch
    import torch.nn.functional as F

    train_t = torch.from_numpy(targets.train_logits)
    transfer_ids = encode(targets.transfer_texts)
    transfer_t = torch.from_numpy(targets.transfer_logits)
    buckets = None
    if dargs.transfer_batching == "length":
        buckets = length_buckets([len(t) for t in transfer_ids], 8 * args.batch_size)

    def loss_fn(model: EmbBERT, b: list[int], logits: torch.Tensor, y: torch.Tensor,
                step: int) -> torch.Tensor:
        hard = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
        loss = (1 - dargs.alpha) * hard + dargs.alpha * soft_kl(logits, train_t[b],
                                                               dargs.temperature)
        if transfer_ids and dargs.transfer_weight:
            g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
            idx = draw_transfer(len(transfer_ids), len(b), g, buckets)
            tl = model(D.pad([transfer_ids[i] for i in idx]))
            loss = loss + dargs.transfer_weight * soft_kl(tl, transfer_t[idx], dargs.temperature)
        return loss

    return loss_fn


# ---- `hil train --teacher` (its options: hil/model/cli.py) -------------------------------------
def train_with_teacher(args: TrainArgs, dargs: DistillArgs,
                       log: Callable[[str], None] = print) -> dict[str, Any]:
    """(b) if dargs.rep_min, then fine-tuning with (a) if dargs.kd; returns finetune's result
    with a "distill" entry (teacher report, settings, phase times), also in OUT/distill.json."""
    import torch

    from hil.model.train import finetune
    from hil.quant.tokenizer import Tokenizer

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = D.load_dataset(args.data or "", args.dev_fraction, args.seed)
    t0 = time.monotonic()
    tok = Tokenizer.from_file(args.tokenizer)
    if (dargs.rep_min > 0 or dargs.rep_steps > 0) and parse_teachers(dargs.teacher)[0] is None:
        raise ValueError("representation distillation (--rep-steps/--rep-min) regresses a "
                         "sentence encoder's embeddings: add one, e.g. --teacher minilm,ngram")
    targets = prepare_teacher(ds, dargs, args.threads, args.seed, log, tok=tok,
                              max_len=args.max_len)
    info: dict[str, Any] = {"settings": asdict(dargs), "teacher": targets.report,
                            "teacher_s": round(time.monotonic() - t0, 1)}
    if dargs.rep_min > 0 or dargs.rep_steps > 0:
        from dataclasses import replace

        from hil.model.rep import rep_pretrain

        texts = list(ds.train.texts) + targets.transfer_texts
        emb = np.concatenate([targets.train_emb, targets.transfer_emb])
        rep_args = replace(args, out=str(out / "rep"))
        info["rep"] = rep_pretrain(rep_args, texts, emb, out / "rep", dargs.rep_min,
                                   dargs.rep_lr, log, dargs.rep_steps)
        info["rep"].pop("history", None)
        if not args.resume or not (out / "checkpoint.pt").exists():
            args.init = str(out / "rep" / "pretrained.pt")
    loss_fn = None
    if dargs.kd:
        loss_fn = kd_loss_fn(targets, dargs, args,
                             lambda texts: D.encode(tok, texts, args.max_len))
    (out / "distill.json").write_text(json.dumps(info, indent=1))
    res = finetune(args, log, loss_fn=loss_fn)
    res["distill"] = info
    (out / "distill.json").write_text(json.dumps(info, indent=1))
    return res
