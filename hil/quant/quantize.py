"""Post-training quantization of an fp32 EmbBERT checkpoint into the integer model (int8-spec).

The quantizer is the only place where float and torch meet the integer model: it calibrates
static activation scales on training sentences (tokenized with the shipped tokenizer), quantizes
weights per output channel, folds every float factor (norm gains, 1/sqrt(D), the branch weights
a and b, the scales) into int32 multipliers + shifts, and builds the blob. What it produces is
then run, without float, by hil/quant/reference.py and by the C engine.

torch is imported lazily so `import hil.quant` works where only numpy is installed.

Why one module over 500 lines: calibration, the per-op requantization and the blob writer are one
chain whose numbers must match hil/quant/reference.py and the firmware exactly; keeping them in
one file keeps that chain readable top to bottom.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hil.paths import datasets_dir
from hil.progress import Bar
from hil.quant import reference
from hil.quant.reference import (
    DIMS_FIELDS,
    EXP_ONE,
    SPEC_LEGACY,
    SPEC_VERSION,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

INT32_MAX = 2**31 - 1


@dataclass
class QuantModel:
    """The integer model: named integer tensors (the blob's content) plus metadata.

    `scales` keeps the float activation scales for reports and for dequantizing logits; the
    integer reference never reads it.
    """

    tensors: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)


# ---- fixed-point helpers -----------------------------------------------------------------------

def quantize_multiplier(real: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """real ~= M * 2^-(31+sh), M signed int32 with |M| in [2^30, 2^31), sh in [-30, 31].

    Multipliers too small for sh = 31 keep sh = 31 and lose leading bits of M (down to 0);
    those above 2^30 cannot be represented and raise.
    """
    r = np.atleast_1d(np.asarray(real, dtype=np.float64))
    m = np.zeros(r.shape, dtype=np.int64)
    sh = np.zeros(r.shape, dtype=np.int64)
    for i, v in enumerate(r):
        if v == 0.0 or not np.isfinite(v):
            if not np.isfinite(v):
                raise ValueError(f"multiplier {v} is not finite")
            m[i], sh[i] = 0, 0
            continue
        frac, exp = math.frexp(abs(v))  # |v| = frac * 2^exp, frac in [0.5, 1)
        mi = round(frac * 2**31)
        if mi == 2**31:
            mi //= 2
            exp += 1
        s = -exp
        if s > 31:
            mi = round(abs(v) * 2.0**62)
            s = 31
        if s < -30:
            raise ValueError(f"multiplier {v} is too large for the fixed-point format")
        m[i] = mi if v > 0 else -mi
        sh[i] = s
    return m.astype(np.int32), sh.astype(np.int8)


def quantize_weight_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output channel (row): returns (q (O,...) int8, scale (O,) float)."""
    w2 = w.reshape(w.shape[0], -1).astype(np.float64)
    amax = np.abs(w2).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.round(w2 / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def quantize_tensor(w: np.ndarray, scale: float) -> np.ndarray:
    """Symmetric int8 with one scale (tables)."""
    return np.clip(np.round(np.asarray(w, np.float64) / scale), -127, 127).astype(np.int8)


BIAS_MAX = 2**30  # |bias| + |dot product| then stays inside int32 in the engine


def quantize_bias(b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int32 bias at the accumulator's scale (input scale x weight scale), clipped to +-2^30."""
    q = np.round(np.asarray(b, np.float64) / scale)
    return np.clip(q, -BIAS_MAX, BIAS_MAX).astype(np.int32)


def best_clip_scale(values: np.ndarray, method: str = "mse") -> float:
    """Activation scale (clip / 127) from calibration samples.

    "mse" searches clip in [0.25, 1] x max|v| for the smallest int8 round-trip error (robust
    to rare outliers without throwing away the tails that matter); "max" is plain max-abs;
    "p99.99" style strings take that percentile of |v|.
    """
    a = np.abs(np.asarray(values, np.float64).ravel())
    amax = float(a.max()) if a.size else 0.0
    if amax == 0.0:
        return 1.0 / 127.0
    if method == "max":
        return amax / 127.0
    if method.startswith("p"):
        return max(float(np.percentile(a, float(method[1:]))), 1e-12) / 127.0
    if method != "mse":
        raise ValueError(f"unknown calibration method {method!r}")
    v = np.asarray(values, np.float64).ravel()
    best, best_err = amax, math.inf
    for frac in np.linspace(0.25, 1.0, 61):
        s = amax * frac / 127.0
        err = float(np.mean((np.clip(np.round(v / s), -128, 127) * s - v) ** 2))
        if err < best_err:
            best, best_err = amax * frac, err
    return best / 127.0


def exp_tables() -> tuple[np.ndarray, np.ndarray]:
    """EXP_HI[k] = 2^14 e^-k (k = 0..16), EXP_LO[r] = 2^14 e^(-r/256) (r = 0..255), rounded."""
    hi = np.array([round(EXP_ONE * math.exp(-k)) for k in range(17)], dtype=np.int16)
    lo = np.array([round(EXP_ONE * math.exp(-r / 256.0)) for r in range(256)], dtype=np.int16)
    return hi, lo


def silu_table(s_in: float, s_out: float) -> np.ndarray:
    """SILU[i] = sat8(round(silu((i - 128) * s_in) / s_out)) for i = 0..255."""
    v = (np.arange(256, dtype=np.float64) - 128.0) * s_in
    return np.clip(np.round(v / (1.0 + np.exp(-v)) / s_out), -128, 127).astype(np.int8)


# ---- checkpoint + calibration data ---------------------------------------------------------

def load_checkpoint(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """(EmbBERT in eval mode, the raw checkpoint dict) from a model dir or a model.pt file."""
    import torch

    from hil.model.embbert import EmbBERT, EmbBERTConfig

    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    ckpt = torch.load(p, map_location="cpu", weights_only=False)
    cfg = EmbBERTConfig.from_dict(ckpt["config"])
    model = EmbBERT(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    ckpt["_path"] = str(p)
    return model, ckpt


def dataset_dir(ckpt: dict[str, Any], model_dir: Path) -> Path:
    """Where the checkpoint's dataset lives: its "dataset" field, else the model dir's name."""
    name = ckpt.get("dataset") or model_dir.name
    if isinstance(name, dict):
        name = name.get("name", model_dir.name)
    return datasets_dir() / str(name)


def read_texts(path: Path, limit: int | None = None) -> tuple[list[str], list[int]]:
    """(texts, labels) from a dataset's .jsonl.gz split."""
    texts, labels = [], []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(int(row["label"]))
            if limit is not None and len(texts) >= limit:
                break
    return texts, labels


def tokenizer_for(model_dir: Path | None = None) -> Any:
    """The model's own tokenizer.json if it ships one, else the package's shipped tokenizer."""
    from hil.quant.tokenizer import Tokenizer

    if model_dir is not None and (Path(model_dir) / "tokenizer.json").is_file():
        return Tokenizer.from_file(Path(model_dir) / "tokenizer.json")
    return Tokenizer.from_file()


def calibration_ids(train_path: Path, max_len: int, count: int, seed: int = 0,
                    model_dir: Path | None = None) -> list[list[int]]:
    """`count` training sentences (seeded sample), tokenized with the shipped tokenizer."""
    texts, _ = read_texts(train_path)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(texts))[:count]
    tok = tokenizer_for(model_dir)
    return [tok.encode(texts[i], max_len=max_len) for i in sorted(pick)]


def pad_batch(seqs: list[list[int]]) -> np.ndarray:
    """Right-pad with [PAD]=0 (exact for real rows: pads are masked keys and come after them)."""
    n = max(len(s) for s in seqs)
    out = np.zeros((len(seqs), n), dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def predict_fp32(model: Any, seqs: list[list[int]], batch: int = 64) -> np.ndarray:
    """fp32 argmax per sequence, batched by length (right-padding is exact: pads are masked)."""
    import torch

    fp = np.zeros(len(seqs), dtype=np.int64)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    with torch.no_grad():
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            fp[idx] = model(torch.from_numpy(pad_batch([seqs[i] for i in idx]))).argmax(-1).numpy()
    return fp


def trace_fp32(model: Any, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """The fp32 forward (mirroring hil/model/embbert.py step by step) recording every tensor that
    gets a static int8 scale, over real tokens only (row 0 only where the engine needs row 0)."""
    import torch
    import torch.nn.functional as F

    mask = ids != 0
    rec: dict[str, np.ndarray] = {}

    def keep(name: str, t: torch.Tensor, m: torch.Tensor) -> None:
        rec[name] = t[m].detach().numpy().ravel().astype(np.float32)

    with torch.no_grad():
        x = model.embed(ids)
        keep("x0", x, mask)
        n_layers = len(model.layers)
        row0 = torch.zeros_like(mask)
        row0[:, 0] = True
        for i, lyr in enumerate(model.layers):
            rows = row0 if i == n_layers - 1 else mask
            y = lyr.norm(x)
            keep(f"l{i}.y", y, mask)
            keep(f"l{i}.q", lyr.q(y), rows)
            attn = lyr.attention(y, mask)
            if lyr.att_output is not None:  # spec 2: the context before att_output is int8
                ctx = context_fp32(lyr, y, mask)
                keep(f"l{i}.ctx", ctx, rows)
                attn = lyr.att_output(ctx)
            c = lyr.conv(F.pad(y.transpose(1, 2), (lyr.kernel - 1, 0))).transpose(1, 2)
            keep(f"l{i}.c", c, rows)
            s = F.silu(c)
            keep(f"l{i}.s", s, rows)
            a, b = lyr.branch_scales()
            x = a * attn - b * lyr.proj(s)
            keep(f"l{i}.x", x, rows)
        logits = model.classifier(x[:, 0])
    return logits, rec


def context_fp32(lyr: Any, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q y^T / sqrt(D)) y of one layer (eval: no dropout): EncoderLayer.attention
    before its att_output, the tensor the engine requantizes to int8 (l{i}.ctx)."""
    import torch

    scores = lyr.q(y) @ y.transpose(1, 2) / math.sqrt(lyr.dim)
    scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ y


def collect_activations(model: Any, seqs: list[list[int]], batch: int = 64
                        ) -> dict[str, np.ndarray]:
    """Every statically scaled activation of the fp32 model on calibration sequences, per tensor.

    Traced once and kept, so several calibration methods can be compared without re-running
    the model (the trace is most of the cost)."""
    import torch

    samples: dict[str, list[np.ndarray]] = {}
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    with Bar("calibrating (fp32 trace)", len(seqs)) as bar:
        for k in range(0, len(order), batch):
            ids = torch.from_numpy(pad_batch([seqs[i] for i in order[k:k + batch]]))
            _, rec = trace_fp32(model, ids)
            for name, v in rec.items():
                samples.setdefault(name, []).append(v)
            bar.advance(len(ids))
    return {name: np.concatenate(parts) for name, parts in samples.items()}


def scales_from(samples: dict[str, np.ndarray], method: str = "mse") -> dict[str, float]:
    """Static per-tensor activation scales by one calibration method (see best_clip_scale)."""
    rng = np.random.default_rng(0)
    scales = {}
    for name, v in samples.items():
        if method == "mse" and v.size > 400_000:  # keep the extremes, subsample the bulk
            top = np.argsort(np.abs(v))[-2000:]
            v = np.concatenate([rng.choice(v, 400_000, replace=False), v[top]])
        scales[name] = best_clip_scale(v, method)
    return scales


def calibrate(model: Any, seqs: list[list[int]], method: str = "mse", batch: int = 64
              ) -> dict[str, float]:
    """Static per-tensor activation scales from the fp32 model on calibration sequences."""
    return scales_from(collect_activations(model, seqs, batch), method)


#: Methods `auto` tries, in order of preference when their dev accuracies tie.
AUTO_CANDIDATES = ("mse", "max", "p99.99", "p99.9")


def selection_split(ckpt: dict[str, Any], model_dir: Path, max_len: int, limit: int = 1000
                    ) -> tuple[list[list[int]], list[int], str]:
    """The sentences the calibration method is chosen on: the model's own dev split.

    The same dev the training run selected its checkpoint on (a dataset's dev split, or the
    stratified slice carved from train with the run's fraction and seed), never test, so the
    choice cannot leak test labels into the shipped blob. At most `limit` sentences (a seeded
    sample) keep the choice cheap on 256-token datasets."""
    from hil.model import data as D

    args = ckpt.get("train_args") or {}
    ds = D.load_dataset(dataset_dir(ckpt, model_dir), args.get("dev_fraction", 0.1),
                        args.get("seed", 0))
    texts, labels = ds.dev.texts, ds.dev.labels
    if len(texts) > limit:
        pick = sorted(np.random.default_rng(0).permutation(len(texts))[:limit])
        texts, labels = [texts[i] for i in pick], [labels[i] for i in pick]
    tok = tokenizer_for(model_dir)
    return [tok.encode(t, max_len=max_len) for t in texts], list(labels), f"dev ({ds.dev_source})"


def choose_method(model: Any, ckpt: dict[str, Any], model_dir: Path,
                  samples: dict[str, np.ndarray], candidates: tuple[str, ...] = AUTO_CANDIDATES,
                  limit: int = 1000, workers: int = 1
                  ) -> tuple[str, dict[str, float], dict[str, Any]]:
    """Pick the calibration method whose int8 model (the integer reference, i.e. the device)
    is most accurate on dev; ties go to the higher agreement with fp32, then to the earlier
    candidate. Why measure instead of fixing one: which clip is best depends on the model
    (max-abs lost nothing on sms_spam where MSE lost 0.1 point; MSE wins elsewhere)."""
    seqs, labels, where = selection_split(ckpt, model_dir, model.cfg.max_len, limit)
    y = np.asarray(labels)
    fp = predict_fp32(model, seqs)
    scored: dict[str, dict[str, float]] = {}
    best: tuple[float, float, int] | None = None
    chosen, chosen_act = candidates[0], {}
    for rank, method in enumerate(candidates):
        act = scales_from(samples, method)
        q8 = predict_int8(quantize_model(model, act, ckpt.get("labels")), seqs, workers,
                          desc=f"int8 on dev, clip {method} ({rank + 1}/{len(candidates)})")
        acc, agree = float((q8 == y).mean() * 100), float((q8 == fp).mean() * 100)
        scored[method] = {"dev_acc_int8": round(acc, 2), "dev_agreement": round(agree, 2)}
        key = (round(acc, 6), round(agree, 6), -rank)
        if best is None or key > best:
            best, chosen, chosen_act = key, method, act
    info = {"chosen_by": f"int8 reference accuracy on {where}, {len(seqs)} sentences",
            "dev_acc_fp32": round(float((fp == y).mean() * 100), 2), "candidates": scored}
    return chosen, chosen_act, info


_WORKER_MODEL: Any = None


def _worker_init(qm: Any) -> None:
    global _WORKER_MODEL
    _WORKER_MODEL = qm


def _worker_predict(seqs: list[list[int]]) -> np.ndarray:
    return reference.predict(_WORKER_MODEL, seqs)


def predict_int8(qm: Any, seqs: list[list[int]], workers: int = 1,
                 desc: str = "int8 reference") -> np.ndarray:
    """The integer reference's predictions, over `workers` processes, with a bar on a terminal.

    Why: the reference runs one sequence at a time in numpy (~80 ms for a 256-token imdb review
    here), so a whole imdb test split takes over half an hour on one core. Workers are spawned,
    not forked: the parent usually holds torch's thread pools, which do not survive a fork.
    Sequences are independent, so predicting in chunks (to advance the bar) changes nothing.
    """
    if not seqs:
        return reference.predict(qm, seqs)
    parts: list[np.ndarray] = []
    with Bar(desc, len(seqs)) as bar:
        if workers <= 1 or len(seqs) < 2 * workers:
            for i in range(0, len(seqs), 16):
                parts.append(reference.predict(qm, seqs[i:i + 16]))
                bar.advance(len(parts[-1]))
            return np.concatenate(parts)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        step = math.ceil(len(seqs) / (4 * workers))
        chunks = [seqs[i:i + step] for i in range(0, len(seqs), step)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(qm,)) as pool:
            for part in pool.map(_worker_predict, chunks):
                parts.append(part)
                bar.advance(len(part))
        return np.concatenate(parts)


# ---- the quantizer ---------------------------------------------------------------------------

def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def quantize_model(model: Any, act: dict[str, float], labels: list[str] | None = None
                   ) -> QuantModel:
    """fp32 EmbBERT + activation scales -> QuantModel (tensor names as in docs/int8-spec.md)."""
    cfg = model.cfg
    sd = {k: _np(v) for k, v in model.state_dict().items()}
    t: dict[str, np.ndarray] = {}
    # Spec 1 (the model before issue #18) stays exactly as it was: the shipped blobs regenerate
    # byte for byte. Anything with a segment embedding or att_output is spec 2.
    version = SPEC_VERSION if cfg.att_output or cfg.segments else SPEC_LEGACY
    dims = dict(version=version, vocab_size=cfg.vocab_size, max_len=cfg.max_len,
                emb_dim=cfg.emb_dim, dim=cfg.dim, n_layers=cfg.n_layers, kernel=cfg.kernel,
                num_labels=cfg.num_labels)
    t["cfg.dims"] = np.array([dims[k] for k in DIMS_FIELDS], dtype=np.int32)
    hi, lo = exp_tables()
    t["exp.hi"], t["exp.lo"] = hi, lo

    # Nano Embedder: int8 tables (one scale each), projections per output channel.
    s_x = act["x0"]
    for part in ("tok", "pos"):
        table = sd[f"embed.{part}.weight"]
        s_tab = max(float(np.abs(table).max()), 1e-12) / 127.0
        t[f"emb.{part}"] = quantize_tensor(table, s_tab)
        wq, s_w = quantize_weight_per_channel(sd[f"embed.{part}_proj.weight"])
        t[f"emb.{part}_proj.w"] = wq
        t[f"emb.{part}_proj.m"], t[f"emb.{part}_proj.sh"] = quantize_multiplier(
            s_tab * s_w / s_x)
        if part == "pos" and version >= 2:
            # Segment 0's embedding (a constant D vector, or none) as a bias of the position
            # accumulator, at its scale: exact up to the bias rounding, and D int32 on device.
            seg = sd["embed.seg.weight"][0] if cfg.segments else np.zeros(cfg.dim)
            t["emb.seg.b"] = quantize_bias(seg, s_tab * s_w)

    d = cfg.dim
    for i, lyr in enumerate(model.layers):
        p, sp = f"l{i}.", f"layers.{i}."
        s_y, s_q, s_c, s_s, s_out = (act[f"l{i}.{k}"] for k in ("y", "q", "c", "s", "x"))
        # RMSNorm: y = x * R * 2^-24 * sqrt(D) * g / s_y (the input scale cancels).
        g = sd[sp + "norm.weight"]
        t[p + "norm.m"], t[p + "norm.sh"] = quantize_multiplier(
            g * math.sqrt(d) * 2.0**-24 / s_y)
        # Query projection.
        wq, s_w = quantize_weight_per_channel(sd[sp + "q.weight"])
        t[p + "q.w"], t[p + "q.b"] = wq, quantize_bias(sd[sp + "q.bias"], s_y * s_w)
        t[p + "q.m"], t[p + "q.sh"] = quantize_multiplier(s_y * s_w / s_q)
        # Softmax argument in Q8: z = d * s_q * s_y / sqrt(D) * 256.
        t[p + "sm.m"], t[p + "sm.sh"] = quantize_multiplier(s_q * s_y / math.sqrt(d) * 256.0)
        # Causal depthwise conv (weight (D,1,K) -> (D,K)), per channel.
        wc, s_wc = quantize_weight_per_channel(sd[sp + "conv.weight"].reshape(d, -1))
        t[p + "conv.w"], t[p + "conv.b"] = wc, quantize_bias(sd[sp + "conv.bias"], s_y * s_wc)
        t[p + "conv.m"], t[p + "conv.sh"] = quantize_multiplier(s_y * s_wc / s_c)
        t[p + "silu"] = silu_table(s_c, s_s)
        # Output projection of the conv branch (int32 accumulators).
        wp, s_wp = quantize_weight_per_channel(sd[sp + "proj.weight"])
        t[p + "proj.w"], t[p + "proj.b"] = wp, quantize_bias(sd[sp + "proj.bias"], s_s * s_wp)
        # out = a * attn - b * h, a and b folded into the two requantizations.
        a, b = (float(v.detach()) for v in lyr.branch_scales())
        if lyr.att_output is None:  # attn in Q16 of y: one multiplier
            t[p + "out.ma"], t[p + "out.sha"] = quantize_multiplier(a * s_y / 2.0**16 / s_out)
        else:  # spec 2: context -> int8 (one scale), att_output -> int32, per channel
            s_ctx = act[f"l{i}.ctx"]
            t[p + "ctx.m"], t[p + "ctx.sh"] = quantize_multiplier(s_y / 2.0**16 / s_ctx)
            wa, s_wa = quantize_weight_per_channel(sd[sp + "att_output.weight"])
            t[p + "ao.w"] = wa
            t[p + "ao.b"] = quantize_bias(sd[sp + "att_output.bias"], s_ctx * s_wa)
            t[p + "out.ma"], t[p + "out.sha"] = quantize_multiplier(a * s_ctx * s_wa / s_out)
        t[p + "out.mb"], t[p + "out.shb"] = quantize_multiplier(b * s_s * s_wp / s_out)
        s_x = s_out

    # Classifier: ONE weight scale, so the raw int32 accumulators rank like the fp32 logits.
    wcl = sd["classifier.weight"]
    s_cls = max(float(np.abs(wcl).max()), 1e-12) / 127.0
    t["cls.w"] = quantize_tensor(wcl, s_cls)
    t["cls.b"] = quantize_bias(sd["classifier.bias"], np.full(cfg.num_labels, s_x * s_cls))

    scales = dict(act)
    scales["logits"] = s_x * s_cls
    meta = {"spec_version": version, "dims": dims, "logit_scale": s_x * s_cls}
    if labels is not None:
        meta["labels"] = list(labels)
    return QuantModel(tensors=t, meta=meta, scales=scales)


def quantize_checkpoint(model_dir: str | Path, calib_count: int = 1000, method: str = "auto",
                        seed: int = 0, train_path: Path | None = None, workers: int = 1
                        ) -> QuantModel:
    """Load, calibrate on training sentences, quantize. Meta records what was done.

    method "auto" (the default) tries AUTO_CANDIDATES and keeps the one whose int8 model is
    most accurate on the model's dev split (choose_method); any other value forces that method.
    """
    model_dir = Path(model_dir)
    model, ckpt = load_checkpoint(model_dir)
    mdir = model_dir if model_dir.is_dir() else model_dir.parent
    data = dataset_dir(ckpt, mdir)
    train = train_path or data / "train.jsonl.gz"
    seqs = calibration_ids(train, model.cfg.max_len, calib_count, seed, mdir)
    samples = collect_activations(model, seqs)
    selection: dict[str, Any] = {}
    if method == "auto":
        method, act, selection = choose_method(model, ckpt, mdir, samples, workers=workers)
    else:
        act = scales_from(samples, method)
    qm = quantize_model(model, act, ckpt.get("labels"))
    pt = Path(ckpt["_path"])
    qm.meta.update({
        "model": pt.parent.name,
        "model_dir": str(mdir),
        "source_sha256": hashlib.sha256(pt.read_bytes()).hexdigest(),
        "calibration": {"method": method, "sentences": len(seqs), "seed": seed,
                        "split": str(train.relative_to(datasets_dir())) if train.is_relative_to(
                            datasets_dir()) else str(train), **selection},
        "act_scales": {k: float(v) for k, v in sorted(act.items())},
    })
    return qm


def random_quant_model(num_labels: int = 4, seed: int = 0, vocab_size: int = 8192,
                       max_len: int = 256, n_layers: int = 4, calib: int = 64, dim: int = 128,
                       kernel: int = 32, emb_dim: int = 16, att_output: bool = True,
                       segments: int = 3) -> QuantModel:
    """A seeded random EmbBERT, calibrated on random ids: for tests when no model is shipped
    (other dims exercise the kernels' fallback paths). Default: today's architecture (spec 2);
    att_output=False, segments=0 is the shipped models' (spec 1), tested until they are
    retrained."""
    import torch

    from hil.model.embbert import EmbBERT, EmbBERTConfig

    torch.manual_seed(seed)
    cfg = EmbBERTConfig(num_labels=num_labels, vocab_size=vocab_size, max_len=max_len,
                        n_layers=n_layers, dim=dim, kernel=kernel, emb_dim=emb_dim,
                        att_output=att_output, segments=segments)
    model = EmbBERT(cfg).eval()
    rng = np.random.default_rng(seed)
    seqs = [[2] + list(rng.integers(5, vocab_size, int(rng.integers(0, min(40, max_len)))))
            for _ in range(calib)]
    qm = quantize_model(model, calibrate(model, seqs, "mse"),
                        [f"label{i}" for i in range(num_labels)])
    qm.meta.update({"model": f"random-seed{seed}", "source_sha256": "",
                    "calibration": {"method": "mse", "sentences": calib, "seed": seed,
                                    "split": "random ids"}})
    return qm


def blob_bytes(qm: QuantModel, with_vocab: bool = True) -> bytes:
    """Serialise a QuantModel (+ its tokenizer's vocab tensors) as a model blob."""
    from hil.quant.blob import write_blob
    from hil.quant.vocab import vocab_tensors

    tensors = dict(qm.tensors)
    if with_vocab:
        mdir = qm.meta.get("model_dir")
        tensors.update(vocab_tensors(tokenizer_for(Path(mdir) if mdir else None).vocab))
    meta = {k: v for k, v in qm.meta.items() if k != "model_dir"}
    return write_blob(tensors, meta=meta)


def build_blob(checkpoint_dir: str | Path, calib_count: int = 1000, method: str = "auto"
               ) -> bytes:
    """checkpoint dir (model.pt) -> model blob bytes: quantized tensors, tables, vocab, meta."""
    return blob_bytes(quantize_checkpoint(checkpoint_dir, calib_count, method))


def compare_on_split(model_dir: str | Path, qm: QuantModel | None = None, split: str = "test",
                     limit: int | None = None, workers: int = 1) -> dict[str, Any]:
    """fp32 (torch) vs int8 (integer reference) accuracy on a dataset split of the checkpoint.

    Both see the same ids (shipped tokenizer, truncated to max_len). Returns counts, both
    accuracies in percent, the drop in points and the prediction agreement.
    """

    model_dir = Path(model_dir)
    model, ckpt = load_checkpoint(model_dir)
    if qm is None:
        qm = quantize_checkpoint(model_dir)
    data = dataset_dir(ckpt, model_dir if model_dir.is_dir() else model_dir.parent)
    path = data / f"{split}.jsonl.gz"
    if not path.exists():
        path = data / "dev.jsonl.gz"
    texts, labels = read_texts(path, limit)
    tok = tokenizer_for(model_dir if model_dir.is_dir() else model_dir.parent)
    seqs = [tok.encode(t, max_len=model.cfg.max_len) for t in texts]
    fp = predict_fp32(model, seqs)
    q8 = predict_int8(qm, seqs, workers, desc=f"int8 on {path.name.split('.')[0]}")
    y = np.asarray(labels)
    acc_fp, acc_q = float((fp == y).mean() * 100), float((q8 == y).mean() * 100)
    return {"split": path.name.split(".")[0], "sentences": len(seqs),
            "correct_fp32": int((fp == y).sum()), "correct_int8": int((q8 == y).sum()),
            "acc_fp32": round(acc_fp, 2), "acc_int8": round(acc_q, 2),
            "drop_points": round(acc_fp - acc_q, 2),
            "agreement": round(float((fp == q8).mean() * 100), 2)}
