"""`hil train --ema`: the weights judged on dev and shipped are the moving average, not the last
step's, and a resumed run gives the same average bit for bit (real nlu_scenario slice)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch (the [train] extra) is not installed")

from tiny_training import nlu_slice, tiny_args  # noqa: E402

from hil.model import data as D  # noqa: E402
from hil.model.train import TrainArgs, finetune  # noqa: E402

needs_data = pytest.mark.skipif(not (D.SHARED_DATASETS / "nlu_scenario").is_dir(),
                                reason=f"datasets not found at {D.SHARED_DATASETS}")


def _slice(tmp_path: Path) -> Path:
    return nlu_slice(tmp_path, 96, 40, 20, stride=True)


def _args(out: Path, data: Path, **kw: object) -> TrainArgs:
    return tiny_args(out, data, **{"ema": 0.9, "eval_every": 12, **kw})


@needs_data
def test_ema_is_what_is_shipped_and_resumes_exactly(tmp_path: Path) -> None:
    data = _slice(tmp_path)
    finetune(_args(tmp_path / "a", data), lambda s: None)
    cut = finetune(_args(tmp_path / "b", data, budget_min=1e-5), lambda s: None)
    assert "budget" in cut["stopped"]
    finetune(_args(tmp_path / "b", data, resume=True), lambda s: None)
    ck = {k: torch.load(tmp_path / k / "checkpoint.pt", weights_only=False) for k in "ab"}
    assert ck["a"]["state"]["step"] == ck["b"]["state"]["step"] == 12
    for k, v in ck["a"]["ema"].items():
        assert torch.equal(v, ck["b"]["ema"][k]), k
    # One evaluation, at the last step (eval_every=12): the shipped tensors must be the
    # average's at that step, and the average differs from the raw weights.
    shipped = torch.load(tmp_path / "a" / "model.pt", weights_only=False)["state_dict"]
    raw, avg = ck["a"]["model"], ck["a"]["ema"]
    assert ck["a"]["state"]["best_step"] == 12
    for name, v in shipped.items():
        assert torch.equal(v, avg[f"module.{name}"]), name
    assert any(not torch.equal(v, raw[n]) for n, v in shipped.items())
