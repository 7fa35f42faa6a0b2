"""Each shipped model (hil/models/<name>/) loads, is complete, and reproduces its recorded accuracy.

The recorded number is the count of correct answers on a fixed slice of the test split (every
k-th text; model.pt["slice"], also in card.md): re-evaluating must give that count, so a changed
tokenizer, model code or checkpoint is caught, not just a big accuracy drop.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="torch (the [train] extra) is not installed")

from hil.model.ship import MODELS_DIR, slice_metrics  # noqa: E402
from hil.model.train import load_model  # noqa: E402

# The one datasets root: $HIL_DATA_DIR, ../shared/datasets beside a checkout, or what
# `hil data fetch` wrote (hil.paths).
from hil.paths import datasets_dir  # noqa: E402

DATASETS = datasets_dir()
SHIPPED = sorted(d.name for d in MODELS_DIR.iterdir() if (d / "model.pt").is_file())


def test_default_model_is_shipped() -> None:
    assert "nlu_scenario" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_complete(name: str) -> None:
    d = MODELS_DIR / name
    model, ck = load_model(d / "model.pt")
    assert set(ck) >= {"config", "state_dict", "labels", "dataset", "max_len", "metrics",
                       "train_args", "slice"}
    assert ck["max_len"] == ck["config"]["max_len"]
    assert ck["config"]["num_labels"] == len(ck["labels"])
    assert not any(k.startswith("dense") or k.startswith("mlm") for k in ck["state_dict"])
    # The model's tokenizer is the shipped one, byte for byte.
    assert (d / "tokenizer.json").read_bytes() == (MODELS_DIR / "tokenizer.json").read_bytes()
    card = (d / "card.md").read_text()
    read = ck["metrics"].get("test_read")
    if read is None:  # shipped before docs/model-selection.md: test came with training
        assert f"{ck['metrics']['test']['accuracy']:.4f}" in card
    else:  # the one recorded test read (hil model test) of exactly these weights
        from hil.model.testread import LEDGER, earlier_reads, weights_hash

        assert earlier_reads(d, weights_hash(d / "model.pt"))[0] == read
        assert f"{read['acc_fp32'] / 100:.4f}" in card and read["utc"] in card
        seeds = ck["seeds"]["summary"]
        assert seeds["n_runs"] >= 3 and f"{seeds['acc_int8']['mean']:.2f} ± " in card
        assert (d / LEDGER).is_file()
    assert f"{ck['slice']['correct']} correct" in card
    assert ck["train_args"]["command"].startswith("hil train")
    if DATASETS.is_dir():
        labels = json.loads((DATASETS / ck["dataset"] / "labels.json").read_text())
        assert labels == ck["labels"]


@pytest.mark.skipif(not DATASETS.is_dir(), reason=f"datasets not found at {DATASETS}")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_reproduces_slice_accuracy(name: str) -> None:
    ck = torch.load(MODELS_DIR / name / "model.pt", weights_only=False)
    got = slice_metrics(MODELS_DIR / name / "model.pt")
    assert got["n"] == ck["slice"]["n"]
    # Exact on the machine that recorded it; one answer of slack for another CPU's float
    # summation order flipping a near-tie.
    assert abs(got["correct"] - ck["slice"]["correct"]) <= 1, (got, ck["slice"])
    assert got["macro_f1"] == pytest.approx(ck["slice"]["macro_f1"], abs=0.01)
