"""Training machinery: metrics, schedules, masking, data splits, and short real training runs.

The runs use a tiny config (D=32, one layer) on a slice of a real dataset so that each takes
seconds; they check that the loss goes down, that --resume continues bit for bit, and that the
shipped-format model.pt loads.
"""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch (the [train] extra) is not installed")

from tiny_training import DATASETS, assert_same, corpus_slice, final_state, nlu_slice, tiny_args  # noqa: E402

from hil.model import data as D  # noqa: E402
from hil.model.info import model_info  # noqa: E402
from hil.model.pretrain import pretrain  # noqa: E402
from hil.model.train import (  # noqa: E402
    finetune,
    load_model,
    metrics_from_predictions,
    warmup_cosine,
)

needs_data = pytest.mark.skipif(not DATASETS.is_dir(), reason=f"datasets not found at {DATASETS}")


def test_metrics_by_hand() -> None:
    # truth 0 0 1 1 2, predicted 0 1 1 1 0: class F1s 0.5, 0.8, 0 -> macro 0.4333
    m = metrics_from_predictions([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 3)
    assert m.accuracy == pytest.approx(0.6)
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m.per_class_f1 == pytest.approx([0.5, 0.8, 0.0])
    assert m.macro_f1 == pytest.approx(1.3 / 3)
    # A class absent from truth and prediction does not drag macro-F1 down.
    assert metrics_from_predictions([0, 1], [0, 1], 3).macro_f1 == 1.0


def test_warmup_cosine() -> None:
    f = warmup_cosine(total=100, warmup=0.1, min_ratio=0.05)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(100) == pytest.approx(0.05) and f(1000) == pytest.approx(0.05)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))


def test_mask_tokens_80_10_10() -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 8192, (64, 128))
    ids[:, 0] = 2
    ids[:, 100:] = 0
    inputs, targets = D.mask_tokens(ids, 8192, g)
    picked = targets != -100
    assert not picked[:, 0].any() and not picked[:, 100:].any()  # never [CLS] or [PAD]
    assert torch.equal(targets[picked], ids[picked])
    frac = picked.float().sum() / (64 * 99)
    assert 0.13 < frac < 0.17
    masked = (inputs == 3) & picked
    kept = (inputs == ids) & picked
    assert 0.77 < masked.sum() / picked.sum() < 0.83
    assert 0.07 < kept.sum() / picked.sum() < 0.13  # 10% unchanged (+ rare random hits)
    assert torch.equal(inputs[~picked], ids[~picked])


def test_carve_dev_is_stratified_and_fixed() -> None:
    texts = [f"t{i}" for i in range(1000)]
    labels = [0] * 900 + [1] * 100
    split = D.Split(texts, labels)
    tr1, dv1 = D.carve_dev(split, 0.1, seed=3)
    tr2, dv2 = D.carve_dev(split, 0.1, seed=3)
    assert dv1.texts == dv2.texts and tr1.texts == tr2.texts
    assert len(dv1) == 100 and dv1.labels.count(1) == 10
    assert not set(dv1.texts) & set(tr1.texts) and len(tr1) + len(dv1) == 1000
    assert D.carve_dev(split, 0.1, seed=4)[1].texts != dv1.texts


def test_read_csv_with_label_names(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text('["ham", "spam"]')
    (tmp_path / "train.csv").write_text('text,label\n"hello, there",ham\nwin cash,spam\nok,0\n')
    ds = D.load_dataset(tmp_path, dev_fraction=0.34, seed=0)
    assert ds.labels == ["ham", "spam"] and ds.test is None
    assert sorted(ds.train.texts + ds.dev.texts) == ["hello, there", "ok", "win cash"]
    assert "carved" in ds.dev_source
    with pytest.raises(ValueError, match="label"):
        D.read_split(_write(tmp_path / "bad.jsonl", [{"text": "x", "label": "eggs"}]),
                     ["ham", "spam"])


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _small_dataset(tmp_path: Path, n_train: int = 400) -> Path:
    """A slice of nlu_scenario: the first n_train train rows, 100 dev, 100 test."""
    return nlu_slice(tmp_path, n_train, 100, 100)


_tiny = partial(tiny_args, max_len=32, epochs=3)


@needs_data
def test_short_training_lowers_loss(tmp_path: Path) -> None:
    data = _small_dataset(tmp_path)
    res = finetune(_tiny(tmp_path / "run", data, eval_every=25), log=lambda s: None)
    hist = res["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.2
    assert res["dev"]["accuracy"] > 0.15  # 18 classes; chance ~0.06, majority ~0.1
    model, meta = load_model(tmp_path / "run" / "model.pt")
    assert set(meta) >= {"config", "state_dict", "labels", "dataset", "max_len", "metrics"}
    assert meta["max_len"] == 32 and len(meta["labels"]) == 18
    assert (tmp_path / "run" / "tokenizer.json").exists()
    assert "test" not in json.loads((tmp_path / "run" / "metrics.json").read_text())  # never read


@needs_data
def test_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    data = _small_dataset(tmp_path, n_train=160)
    finetune(_tiny(tmp_path / "a", data, epochs=2), log=lambda s: None)
    # Cut the second run by a tiny budget after a step or so, then resume it to the end.
    cut = finetune(_tiny(tmp_path / "b", data, epochs=2, budget_min=1e-5), log=lambda s: None)
    assert cut["steps"] < 20 and "budget" in cut["stopped"]
    finetune(_tiny(tmp_path / "b", data, epochs=2, resume=True), log=lambda s: None)
    a = final_state(tmp_path / "a")
    assert a["step"] == 20
    assert_same(a, final_state(tmp_path / "b"))  # weights, optimizer, generator: bit for bit


@needs_data
def test_short_pretraining_lowers_mlm_loss(tmp_path: Path) -> None:
    corpus = corpus_slice(tmp_path, 600)
    res = pretrain(_tiny(tmp_path / "pt", None, corpus=str(corpus), epochs=3, max_len=48,
                         eval_every=10, lr=5e-3), log=lambda s: None)
    hist = res["history"]
    assert hist[0]["dev_loss"] < math.log(8192) + 1.0
    assert hist[-1]["dev_loss"] < hist[0]["dev_loss"] - 0.5
    ck = torch.load(tmp_path / "pt" / "pretrained.pt", weights_only=False)
    assert "classifier.weight" in ck["state_dict"] and "dense.weight" in ck["mlm_head"]
    # The pretrained encoder initialises a fine-tune (classifier fresh).
    data = _small_dataset(tmp_path, n_train=64)
    args = _tiny(tmp_path / "ft", data, epochs=1, max_len=32, init=str(tmp_path / "pt" /
                                                                      "pretrained.pt"))
    finetune(args, log=lambda s: None)
    ft = torch.load(tmp_path / "ft" / "checkpoint.pt", weights_only=False)
    assert ft["model"]["embed.pos.weight"].shape[0] == 32


def test_model_info_matches_paper_accounting() -> None:
    from hil.model.embbert import EmbBERT, EmbBERTConfig
    from hil.model.info import PAPER_CONFIG

    cfg = EmbBERTConfig(num_labels=2)
    assert cfg.to_dict() == PAPER_CONFIG
    info = model_info(cfg.to_dict())
    assert info["params"] == EmbBERT(cfg).num_params()
    # The reference's 357,248: embedder 139,264 + segment 384, four layers of 37,888 + 16,512
    # (att_output), as the paper's count.
    assert info["params_without_classifier"] == 139_264 + 384 + 4 * (37_888 + 16_512) == 357_248
    assert info["weights_fp32_bytes"] == 4 * info["params"]
    assert info["activation_values"] == 4 * 256 * 128 + 256 * 256
    # The paper's accounting (backbone fp32 + 4 x T x D fp32 values): its "EmbBERT 1.95 MB".
    pa = info["paper_accounting"]
    assert (pa["weights_fp32_bytes"], pa["activations_fp32_bytes"]) == (1_428_992, 524_288)
    assert sum(g["params"] for g in info["groups"].values()) == info["params"]
    short = model_info(EmbBERTConfig(num_labels=18, max_len=64).to_dict())
    assert short["seq_len"] == 64 and short["activations_fp32_bytes"] == 4 * (4 * 64 * 128 +
                                                                             64 * 64)
    assert short["weights_int8_bytes"] < short["weights_fp32_bytes"] / 3


def test_cli_model_info_json(tmp_path: Path) -> None:
    from hil.cli import main

    out = tmp_path / "info.json"
    assert main(["model", "info", "--seq-len", "128", "--json", str(out)]) == 0
    info = json.loads(out.read_text())
    assert info["seq_len"] == 128 and info["params"] == 357_506
