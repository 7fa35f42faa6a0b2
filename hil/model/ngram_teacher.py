"""A teacher with no pretrained weights: TF-IDF word/character n-grams + logistic regression.

Why: the frozen MiniLM teacher (hil/model/teacher.py) is strong on short intents but weak on long
reviews (it sees 128 of its own tokens and embeds ~12 imdb reviews/s here: ~35 min for imdb's
training split, and a logistic head on it is itself no 85% teacher). A linear model on n-gram
TF-IDF features is the classic strong baseline for exactly those tasks (Wang & Manning 2012),
fits in seconds to a minute on one core, and errs differently from a sentence encoder, so the
two average into a better teacher than either (the weight is chosen on dev).

Honest soft labels: a linear model on ~10^5-10^6 sparse features fits its training split almost
perfectly, so its logits on the very texts it was fitted on are the hard labels again. The
training split's logits are therefore out-of-fold: K stratified folds, each text labelled by the
model that did not see it. Extra texts derived from a training text (later windows of a long
review, `source[i] = j`) are labelled by the same fold model as text j; every other text (dev,
test, unlabelled transfer text) by the model fitted on the whole training split.

Training only (scikit-learn is in the [distill] extra); results are cached on disk keyed by every
text, label and setting, so a rerun or a --resume pays nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hil.model.teacher import texts_digest

NGRAM_VERSION = "tfidf-logreg-1"  # part of the cache key: a new recipe refits
FEATURES = ("word", "char", "both")
C_GRID = (1.0, 3.0, 10.0, 30.0)  # inverse L2 strength, picked on dev


@dataclass
class NgramFit:
    """Log-probabilities of the n-gram teacher (before temperature calibration)."""

    train: np.ndarray  # (N_train, C), out-of-fold
    dev: np.ndarray
    test: np.ndarray | None
    extra: np.ndarray  # (N_extra, C), in the order of the `extra` texts given
    c: float  # the chosen inverse regularisation strength
    dev_acc: float
    oof_acc: float  # accuracy of the out-of-fold train logits: what the student is shown
    seconds: float


def vectorizer(features: str) -> Any:
    """TF-IDF features: word uni+bigrams, char_wb 2-5-grams, or both side by side.

    sublinear tf and min_df=2 are the usual settings for reviews and short messages; char n-grams
    carry the spelling-level cues of SMS spam ("txt", "£1000", phone numbers)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                           dtype=np.float32)
    if features == "word":
        return word
    if features == "char":
        return char
    if features == "both":
        return make_union(word, char)
    raise ValueError(f"n-gram features {features!r}: expected one of {', '.join(FEATURES)}")


def _fit(x: Any, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000).fit(x, y)


def _log_proba(model: Any, x: Any, num_labels: int) -> np.ndarray:
    """(N, num_labels) log-probabilities, columns in label-id order even when a label is absent
    from the training split (its column stays at log(1e-9))."""
    out = np.full((x.shape[0], num_labels), np.log(1e-9), np.float32)
    if x.shape[0]:
        out[:, model.classes_] = model.predict_log_proba(x)
    return out


def fit_ngram_teacher(train: Sequence[str], train_y: Sequence[int], dev: Sequence[str],
                      dev_y: Sequence[int], num_labels: int, *, test: Sequence[str] | None = None,
                      extra: Sequence[str] = (), extra_source: Sequence[int] = (),
                      features: str = "both", folds: int = 5, seed: int = 0,
                      cache_dir: str | Path | None = None,
                      log: Callable[[str], None] = print) -> NgramFit:
    """Fit the n-gram teacher: C on dev, then out-of-fold train logits and full-fit logits for
    dev, test and extra texts (extra_source[i] >= 0: derived from train text i, labelled by its
    fold model). Cached under cache_dir when given."""
    if len(extra_source) not in (0, len(extra)):
        raise ValueError("extra_source must give one source index per extra text")
    src = np.asarray(list(extra_source) if extra_source else [-1] * len(extra), np.int64)
    key = hashlib.sha256(json.dumps(
        [NGRAM_VERSION, features, folds, seed, num_labels, list(train_y), list(dev_y),
         texts_digest(train), texts_digest(dev), texts_digest(test or []),
         texts_digest(extra), src.tolist(), list(C_GRID)]).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"ngram-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        z = np.load(path)
        log(f"n-gram teacher from cache {path} (dev acc {float(z['dev_acc']):.4f})")
        return NgramFit(z["train"], z["dev"], z["test"] if z["has_test"] else None, z["extra"],
                        float(z["c"]), float(z["dev_acc"]), float(z["oof_acc"]),
                        float(z["seconds"]))
    from sklearn.model_selection import StratifiedKFold

    t0 = time.monotonic()
    y, yd = np.asarray(train_y), np.asarray(dev_y)
    vec = vectorizer(features)
    xt = vec.fit_transform(list(train))
    xd = vec.transform(list(dev))
    best: tuple[float, float, Any] = (-1.0, 0.0, None)
    for c in C_GRID:
        m = _fit(xt, y, c)
        acc = float((m.predict(xd) == yd).mean())
        log(f"n-gram teacher ({features}, {xt.shape[1]:,} features): C {c:g}: dev acc {acc:.4f}")
        if acc > best[0]:  # strongest regularisation first: on a tie the smoother teacher wins
            best = (acc, c, m)
    dev_acc, c, full = best
    extra_x = vec.transform(list(extra)) if len(extra) else None
    extra_lp = np.zeros((len(extra), num_labels), np.float32)
    if extra_x is not None and (src < 0).any():
        extra_lp[src < 0] = _log_proba(full, extra_x[np.flatnonzero(src < 0)], num_labels)
    oof = np.zeros((len(train), num_labels), np.float32)
    # Out-of-fold: each fold's vectorizer is refitted too, so no vocabulary or idf leaks in.
    kf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (fit_idx, held_idx) in enumerate(kf.split(np.zeros(len(y)), y)):
        fv = vectorizer(features)
        m = _fit(fv.fit_transform([train[i] for i in fit_idx]), y[fit_idx], c)
        oof[held_idx] = _log_proba(m, fv.transform([train[i] for i in held_idx]), num_labels)
        mine = np.flatnonzero(np.isin(src, held_idx))
        if len(mine):
            extra_lp[mine] = _log_proba(m, fv.transform([extra[i] for i in mine]), num_labels)
        log(f"n-gram teacher: fold {k + 1}/{folds} done")
    oof_acc = float((oof.argmax(1) == y).mean())
    dev_lp = _log_proba(full, xd, num_labels)
    test_lp = _log_proba(full, vec.transform(list(test)), num_labels) if test is not None else None
    fit = NgramFit(oof, dev_lp, test_lp, extra_lp, c, dev_acc, oof_acc,
                   round(time.monotonic() - t0, 1))
    log(f"n-gram teacher: C {c:g}, dev acc {dev_acc:.4f}, out-of-fold train acc {oof_acc:.4f}, "
        f"{fit.seconds:.0f} s")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, train=oof, dev=dev_lp, test=test_lp if test_lp is not None else np.zeros(0),
                 has_test=test_lp is not None, extra=extra_lp, c=c, dev_acc=dev_acc,
                 oof_acc=oof_acc, seconds=fit.seconds)
        tmp.replace(path)
    return fit


def visible_texts(tok: Any, texts: Sequence[str], max_len: int) -> list[str]:
    """Each text cut to the span the student actually sees: its first max_len - 1 word pieces
    (the tokenizer keeps character offsets through normalisation).

    Why: the soft label should be a function of the student's input; a teacher that reads the
    end of a review the student never sees teaches it what it cannot learn."""
    out: list[str] = []
    for t, enc in zip(texts, _encodings(tok, texts), strict=True):
        offs = enc.offsets
        out.append(t if len(offs) <= max_len - 1 else t[: offs[max_len - 2][1]])
    return out


def _encodings(tok: Any, texts: Sequence[str]) -> list[Any]:
    """HF encodings (pieces with character offsets) of many texts, in one batched call."""
    return tok.hf.encode_batch(list(texts), add_special_tokens=False) if len(texts) else []


def later_windows(tok: Any, texts: Sequence[str], max_len: int, limit: int
                  ) -> tuple[list[str], list[int]]:
    """Up to `limit` (0 = all) extra texts: the later windows of the training texts longer than
    the student's view, each at most max_len - 1 word pieces, cut at word boundaries so that a
    window tokenizes to exactly its pieces, with the index of their source text. Windows of
    fewer than a quarter of max_len pieces are left out.

    Why: a 256-token student sees a third of a long review; the rest of the review is in-domain
    text that the out-of-fold teacher can label honestly, i.e. free transfer data."""
    w = max_len - 1
    wins: list[str] = []
    src: list[int] = []
    for i, (t, enc) in enumerate(zip(texts, _encodings(tok, texts), strict=True)):
        offs, words = enc.offsets, enc.word_ids
        starts = [k for k in range(len(offs)) if k == 0 or words[k] != words[k - 1]]
        starts.append(len(offs))
        b = next((k for k in starts if k >= w), len(offs))  # first word the student misses
        while b < len(offs):
            e = max((k for k in starts if k <= b + w), default=b)
            if e <= b:  # one word longer than a window: nothing sensible to cut
                break
            if e - b >= max_len // 4:
                wins.append(t[offs[b][0]: offs[e - 1][1]])
                src.append(i)
            b = e
    if limit and len(wins) > limit:  # evenly spaced, deterministic
        keep = np.linspace(0, len(wins) - 1, limit).round().astype(int)
        wins, src = [wins[k] for k in keep], [src[k] for k in keep]
    return wins, src
