"""Every shipped model's files agree with each other, so a retrained checkpoint cannot ship with
a stale int8 blob (the blob records the sha256 of the checkpoint it was quantized from)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hil.quant.blob import read_blob

MODELS = Path(__file__).resolve().parents[1] / "hil" / "models"
SHIPPED = sorted(p.parent.name for p in MODELS.glob("*/model.pt"))


def test_default_model_is_shipped() -> None:
    assert "nlu_scenario" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_blob_was_quantized_from_the_shipped_checkpoint(name: str) -> None:
    blob_path = MODELS / name / "model.bin"
    assert blob_path.exists(), f"{name}: no model.bin; run `hil quantize --all`"
    blob = read_blob(blob_path.read_bytes())
    checkpoint = hashlib.sha256((MODELS / name / "model.pt").read_bytes()).hexdigest()
    assert blob.meta["source_sha256"] == checkpoint, (
        f"{name}: model.bin was quantized from another checkpoint; run `hil quantize --all`"
    )
    assert blob.meta["model"] == name


@pytest.mark.parametrize("name", SHIPPED)
def test_model_tokenizer_is_the_shipped_tokenizer(name: str) -> None:
    own = (MODELS / name / "tokenizer.json").read_bytes()
    assert own == (MODELS / "tokenizer.json").read_bytes()
