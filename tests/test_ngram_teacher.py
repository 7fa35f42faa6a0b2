"""The n-gram teacher (hil/model/ngram_teacher.py) on real data: its training-split logits are
out-of-fold (honest), derived texts are labelled by their source's fold model, results are
cached and invalidated, the student's view is exactly what the student tokenizes, and
`hil train --teacher ngram` distils end to end. scikit-learn and the datasets are real; nothing
is mocked.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn (the [distill] extra) is not installed")
torch = pytest.importorskip("torch", reason="torch (the [train] extra) is not installed")

from hil.model import data as D  # noqa: E402
from hil.model import distill  # noqa: E402
from hil.model.ngram_teacher import fit_ngram_teacher, later_windows, visible_texts  # noqa: E402
from hil.quant.tokenizer import Tokenizer  # noqa: E402

DATASETS = D.SHARED_DATASETS
needs_data = pytest.mark.skipif(not (DATASETS / "nlu_scenario").is_dir(),
                                reason=f"datasets not found at {DATASETS}")


def _slice(tmp_path: Path, name: str = "nlu_scenario", n_train: int = 400, n_dev: int = 120,
           n_test: int = 60) -> Path:
    src = DATASETS / name
    out = tmp_path / f"{name}_small"
    out.mkdir()
    (out / "labels.json").write_text((src / "labels.json").read_text())
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        if n and (src / f"{split}.jsonl.gz").exists():
            with gzip.open(src / f"{split}.jsonl.gz", "rt") as f:
                rows = f.readlines()
            # Evenly spaced rows: the files are sorted by label, so the first n would be one class.
            step = max(1, len(rows) // n)
            (out / f"{split}.jsonl").write_text("".join(rows[::step][:n]))
    return out


@needs_data
def test_train_logits_are_out_of_fold_and_derived_texts_use_their_fold(tmp_path: Path) -> None:
    ds = D.load_dataset(_slice(tmp_path))
    tr, y = list(ds.train.texts), ds.train.labels
    # Extra texts: the first 50 training texts themselves, marked as derived from themselves,
    # and the same 50 as free-standing text (labelled by the model fitted on all of train).
    extra = tr[:50] + tr[:50]
    source = list(range(50)) + [-1] * 50
    fit = fit_ngram_teacher(tr, y, ds.dev.texts, ds.dev.labels, len(ds.labels), extra=extra,
                            extra_source=source, features="word", log=lambda s: None)
    assert fit.train.shape == (len(tr), len(ds.labels)) and fit.dev.shape[0] == len(ds.dev)
    # A derived text is labelled by the fold model that did not see its source: the same
    # numbers as the source's own out-of-fold logits.
    assert np.allclose(fit.extra[:50], fit.train[:50])
    # The full model has seen them: it is (nearly) always right and more confident than the
    # out-of-fold models, which is why the student is never shown its logits on train.
    full_right = (fit.extra[50:].argmax(1) == np.array(y[:50])).mean()
    assert full_right >= 0.95
    assert fit.oof_acc < full_right
    oof_conf = np.exp(fit.train[:50].max(1)).mean()
    assert np.exp(fit.extra[50:].max(1)).mean() > oof_conf
    assert 0.3 < fit.oof_acc < 0.95 and fit.dev_acc > 0.4  # 400 texts, 18 classes


@needs_data
def test_cached_results_are_reused_and_invalidated(tmp_path: Path) -> None:
    ds = D.load_dataset(_slice(tmp_path, n_train=200, n_dev=60))
    logs: list[str] = []
    kw = dict(features="char", cache_dir=tmp_path / "cache", log=logs.append)
    a = fit_ngram_teacher(ds.train.texts, ds.train.labels, ds.dev.texts, ds.dev.labels,
                          len(ds.labels), **kw)  # type: ignore[arg-type]
    assert not any("from cache" in s for s in logs)
    logs.clear()
    b = fit_ngram_teacher(ds.train.texts, ds.train.labels, ds.dev.texts, ds.dev.labels,
                          len(ds.labels), **kw)  # type: ignore[arg-type]
    assert any("from cache" in s for s in logs) and not any("fold" in s for s in logs)
    assert np.array_equal(a.train, b.train) and a.c == b.c
    logs.clear()
    flipped = list(ds.train.labels)
    flipped[0] = (flipped[0] + 1) % len(ds.labels)
    fit_ngram_teacher(ds.train.texts, flipped, ds.dev.texts, ds.dev.labels, len(ds.labels),
                      **kw)  # type: ignore[arg-type]
    assert not any("from cache" in s for s in logs)  # one label changed: refitted
    assert len(list((tmp_path / "cache").glob("ngram-*.npz"))) == 2


@needs_data
def test_student_view_and_later_windows_follow_the_student_tokens() -> None:
    tok = Tokenizer.from_file()
    with gzip.open(DATASETS / "imdb" / "train.jsonl.gz", "rt") as f:
        texts = [json.loads(next(f))["text"] for _ in range(40)] + ["A short one.", ""]
    max_len = 64
    seen = visible_texts(tok, texts, max_len)
    for full, cut in zip(texts, seen, strict=True):
        assert tok.encode(cut, max_len=10_000) == tok.encode(full, max_len=max_len)
    wins, src = later_windows(tok, texts, max_len, limit=0)
    assert wins and sorted(src) == src
    for i in set(src):
        pieces = tok.encode(texts[i], max_len=10_000)[1:]
        mine = [tok.encode(w, max_len=10_000)[1:] for w, s in zip(wins, src, strict=True)
                if s == i]
        joined = [p for m in mine for p in m]
        # Windows continue the stream where the student's view ends (at the next whole word:
        # a piece starting with ## continues a word), without overlap or gaps.
        start = max_len - 1
        while tok.id_to_token(pieces[start]).startswith("##"):
            start += 1
        assert joined == pieces[start: start + len(joined)]
        assert all(len(m) <= max_len - 1 for m in mine)
    few, few_src = later_windows(tok, texts, max_len, limit=5)
    assert len(few) == 5 and set(few) <= set(wins) and set(few_src) <= set(src)


def test_teacher_spec_parsing() -> None:
    assert distill.parse_teachers("minilm") == ("minilm", False)
    assert distill.parse_teachers("ngram") == (None, True)
    assert distill.parse_teachers("minilm, ngram") == ("minilm", True)
    for bad in ("", "minilm,other", "ngram,ngram"):
        with pytest.raises(ValueError):
            distill.parse_teachers(bad)


def test_mix_weight_is_chosen_on_dev() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.log(np.full((300, 3), 0.1))
    good[np.arange(300), y] = np.log(0.8)  # always right
    noise = np.log(rng.dirichlet(np.ones(3), 300))  # chance
    parts = {"a": {"dev": noise, "train": noise}, "b": {"dev": good, "train": good}}
    mixed, w = distill._mix(parts, y)
    assert w is not None and w <= 0.35  # mostly the teacher that is right on dev
    assert (mixed["dev"].argmax(1) == y).mean() == 1.0
    single, none = distill._mix({"b": parts["b"]}, y)
    assert none is None and single is parts["b"]


@needs_data
def test_hil_train_with_the_ngram_teacher_distils_end_to_end(tmp_path: Path) -> None:
    data = _slice(tmp_path, name="sms_spam", n_train=300, n_dev=0, n_test=60)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hil.cli", "train", "--data", str(data), "--out", str(out),
           "--teacher", "ngram", "--ngram-features", "char", "--transfer-docs", "16",
           "--teacher-cache", str(tmp_path / "cache"), "--max-len", "32", "--epochs", "2",
           "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads((out / "distill.json").read_text())
    rep = info["teacher"]
    assert rep["ngram"]["features"] == "char" and 0.8 < rep["ngram"]["oof_train_acc"] <= 1.0
    assert rep["transfer_n"] == 16 and "minilm" not in rep
    assert (out / "model.pt").exists()
    # Representation distillation needs an encoder's embeddings: a clear error, no traceback.
    bad = subprocess.run([*cmd[:7], str(tmp_path / "bad"), *cmd[8:], "--rep-steps", "5"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "sentence encoder" in bad.stderr
    assert "Traceback" not in bad.stderr
