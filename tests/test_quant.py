"""The quantizer and the integer reference: fixed-point primitives, error handling, fidelity.

The reference is the definition of the int8 model, so these tests pin its primitives to their
documented formulas (docs/int8-spec.md) and check that the whole integer model stays close to
the fp32 model it came from.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from hil.paths import datasets_dir
from hil.quant import reference as R

torch = pytest.importorskip("torch")

from hil.quant.quantize import (  # noqa: E402
    blob_bytes,
    exp_tables,
    predict_int8,
    quantize_multiplier,
    random_quant_model,
    silu_table,
)


@pytest.fixture(scope="module")
def qm():
    return random_quant_model(num_labels=5, seed=0)


def test_quantize_multiplier_round_trip() -> None:
    """M * 2^-(31+sh) reproduces the real multiplier to 2^-30 relative (and its sign)."""
    rng = np.random.default_rng(0)
    reals = np.concatenate([rng.uniform(-1, 1, 200) * 10.0 ** rng.integers(-8, 8, 200),
                            [1.0, -1.0, 0.5, 2**20, 1e-12]])
    m, sh = quantize_multiplier(reals)
    assert m.dtype == np.int32 and sh.dtype == np.int8
    assert ((sh >= -30) & (sh <= 31)).all()
    back = m.astype(np.float64) * 2.0 ** (-(31 + sh.astype(np.float64)))
    big = np.abs(reals) > 2.0**-31
    assert np.allclose(back[big], reals[big], rtol=2**-29, atol=0)
    assert quantize_multiplier(0.0)[0][0] == 0
    with pytest.raises(ValueError):
        quantize_multiplier(2.0**40)


def test_rq_rounds_half_up_and_matches_real() -> None:
    m, sh = quantize_multiplier(0.25)
    assert R.rq(np.array([2, 6, -2, -6, 1, -1]), m, sh).tolist() == [1, 2, 0, -1, 0, 0]
    rng = np.random.default_rng(1)
    acc = rng.integers(-(2**31), 2**31, 1000)
    for real in (0.7, 3e-5, -0.013, 37.5):
        mm, ss = quantize_multiplier(real)
        got = R.rq(acc, mm, ss)
        assert np.abs(got - acc * real).max() <= 0.5 + np.abs(acc).max() * abs(real) * 2**-29


def test_isqrt_exact() -> None:
    vals = np.array([0, 1, 2, 3, 4, 15, 16, 17, 2**48, 2**48 - 1, 2**62 + 12345])
    assert R.isqrt_floor(vals).tolist() == [math.isqrt(int(v)) for v in vals]


def test_exp_and_silu_tables() -> None:
    hi, lo = exp_tables()
    assert hi[0] == lo[0] == 1 << 14 and hi[16] == 0 and (np.diff(lo) <= 0).all()
    z = -np.arange(0, 4097)
    e = R.exp_q14(z, hi.astype(np.int64), lo.astype(np.int64))
    assert np.abs(e - np.exp(z / 256.0) * 2**14).max() <= 2.0
    t = silu_table(0.05, 0.03)
    assert t.dtype == np.int8 and t.shape == (256,) and t[128] == 0


def test_rmsnorm_zero_row_and_scale_invariance() -> None:
    d = 128
    m, sh = quantize_multiplier(np.full(d, math.sqrt(d) * 2.0**-24 / (4.0 / 127)))
    x = np.zeros((3, d), dtype=np.int64)
    x[1, :] = 3
    x[2, :] = 100
    y = R.rmsnorm(x, m.astype(np.int64), sh.astype(np.int64))
    assert (y[0] == 0).all()
    assert (y[1] == y[2]).all() and y[1, 0] == round(127 / 4)  # scale cancels


def test_reference_validates_ids(qm) -> None:
    with pytest.raises(ValueError, match="EMPTY"):
        R.forward(qm, [])
    with pytest.raises(ValueError, match="TOO_LONG"):
        R.forward(qm, [2] * 257)
    with pytest.raises(ValueError, match="BAD_IDS"):
        R.forward(qm, [2, 8192])


def test_reference_edge_lengths(qm) -> None:
    """Length 1, max length, all padding: defined integer outputs, no errors."""
    for ids in ([2], [2] + [7] * 255, [0, 0, 0], [0]):
        out = R.forward(qm, ids)
        assert out.dtype == np.int32 and out.shape == (5,)


def test_parallel_reference_predicts_the_same_in_order(qm) -> None:
    """Worker processes (spawned) split the sequences; the predictions come back in input order
    and equal the single-process ones."""
    rng = np.random.default_rng(3)
    seqs = [[2, *rng.integers(3, 8192, size=int(n)).tolist()] for n in rng.integers(1, 40, 24)]
    one = R.predict(qm, seqs)
    assert len(set(one.tolist())) > 1  # the check sees different classes, not a constant
    assert np.array_equal(predict_int8(qm, seqs, workers=2), one)


@pytest.mark.parametrize("att_output,segments", [(True, 3), (False, 3), (False, 0)])
def test_integer_model_tracks_fp32(att_output: bool, segments: int) -> None:
    """The integer logits, dequantized, stay close to the fp32 logits of the same model: the
    reference EmbBERT (spec 2), --no-att-output (spec 2, segment bias only) and the shipped
    models' architecture (spec 1)."""
    from hil.model.embbert import EmbBERT, EmbBERTConfig

    q = random_quant_model(num_labels=5, seed=0, att_output=att_output, segments=segments)
    torch.manual_seed(0)
    model = EmbBERT(EmbBERTConfig(num_labels=5, att_output=att_output,
                                  segments=segments)).eval()
    rng = np.random.default_rng(7)
    agree, err = 0, []
    for _ in range(40):
        ids = [2] + list(rng.integers(5, 8192, int(rng.integers(1, 40))))
        f = model(torch.tensor([ids])).detach().numpy()[0]
        g = R.forward(q, ids) * q.meta["logit_scale"]
        err.append(np.abs(f - g).max() / np.abs(f).max())
        agree += int(f.argmax() == g.argmax())
    assert agree >= 36 and float(np.median(err)) < 0.1


def test_spec_version_follows_the_architecture() -> None:
    """Spec 1 (no segment embedding, no att_output: the shipped models) keeps exactly the
    tensors it had; a segment embedding makes spec 2 with the bias "emb.seg.b" at the position
    accumulator's scale; att_output adds the context rq, the projection and a per-channel
    out.ma. The reference refuses a spec it does not know."""
    kw = dict(num_labels=3, seed=0, n_layers=1, calib=8, max_len=32)
    legacy = random_quant_model(att_output=False, segments=0, **kw)
    no_ao = random_quant_model(att_output=False, **kw)
    full = random_quant_model(**kw)
    old_names = set(legacy.tensors)
    assert legacy.tensors["cfg.dims"][0] == 1 == legacy.meta["spec_version"]
    assert legacy.tensors["l0.out.ma"].shape == (1,)
    assert set(no_ao.tensors) == old_names | {"emb.seg.b"}
    assert no_ao.tensors["cfg.dims"][0] == 2 == no_ao.meta["spec_version"]
    assert set(full.tensors) == old_names | {"emb.seg.b", "l0.ctx.m", "l0.ctx.sh", "l0.ao.w",
                                             "l0.ao.b"}
    assert full.tensors["l0.ao.w"].shape == (128, 128) and full.tensors["l0.ao.w"].dtype == np.int8
    assert full.tensors["l0.out.ma"].shape == full.tensors["l0.out.sha"].shape == (128,)
    assert full.tensors["l0.ctx.m"].shape == (1,) and full.tensors["emb.seg.b"].dtype == np.int32
    assert np.abs(full.tensors["emb.seg.b"]).max() > 0  # the segment vector is really there
    for q in (legacy, no_ao, full):
        assert R.forward(q, [2, 9, 77]).shape == (3,)
    bad = dict(full.tensors)
    bad["cfg.dims"] = np.where(np.arange(8) == 0, 3, full.tensors["cfg.dims"]).astype(np.int32)
    with pytest.raises(ValueError, match="EBQ_ERR_BLOB_VERSION"):
        R.forward(type(full)(tensors=bad), [2])


def test_blob_round_trip(qm) -> None:
    """forward(QuantModel) == forward(read_blob(blob)): the blob holds everything it needs."""
    from hil.quant.blob import read_blob

    blob = read_blob(blob_bytes(qm))
    assert blob.meta["spec_version"] == R.SPEC_VERSION and "labels" in blob.meta
    for ids in ([2, 100, 200], [2] + list(range(5, 60))):
        assert (R.forward(blob, ids) == R.forward(qm, ids)).all()


def test_reference_imports_no_torch_and_no_float() -> None:
    """reference.py: numpy only (no torch import), and no float literal or float() call."""
    src = Path(R.__file__).read_text()
    tree = ast.parse(src)
    names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in n.names} | {n.module for n in ast.walk(tree)
                                  if isinstance(n, ast.ImportFrom) and n.module}
    assert not any("torch" in str(n) for n in names)
    floats = [n for n in ast.walk(tree) if isinstance(n, ast.Constant)
              and isinstance(n.value, float)]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id == "float"]
    assert not floats and not calls
    assert "float" not in src.replace("no float", "").replace("No float", "")


SHARED_DATASETS = datasets_dir()
SMS = Path(__file__).resolve().parents[1] / "hil" / "models" / "sms_spam"


@pytest.mark.skipif(not (SHARED_DATASETS / "sms_spam").is_dir(),
                    reason="needs ../shared/datasets/sms_spam (the model's dev split)")
def test_auto_calibration_picks_the_most_accurate_method_on_dev() -> None:
    """`auto` measures every candidate with the integer reference on the model's dev split (the
    slice carved from train, never test), keeps the best, and records why in the blob's meta."""
    from hil.model import data as D
    from hil.quant.quantize import (
        AUTO_CANDIDATES,
        load_checkpoint,
        quantize_checkpoint,
        selection_split,
    )

    qm = quantize_checkpoint(SMS, calib_count=200)
    cal = qm.meta["calibration"]
    scores = cal["candidates"]
    assert set(scores) == set(AUTO_CANDIDATES) and cal["method"] in scores
    best = max(s["dev_acc_int8"] for s in scores.values())
    assert scores[cal["method"]]["dev_acc_int8"] == best
    assert "dev" in cal["chosen_by"] and "test" not in cal["chosen_by"]
    # the chosen scales are the forced method's scales: `auto` only chooses, it adds nothing
    forced = quantize_checkpoint(SMS, calib_count=200, method=cal["method"])
    assert forced.meta["act_scales"] == qm.meta["act_scales"]
    assert "candidates" not in forced.meta["calibration"]
    # the selection sentences are dev sentences: none of them is a test sentence
    model, ckpt = load_checkpoint(SMS)
    seqs, labels, where = selection_split(ckpt, SMS, model.cfg.max_len)
    args = ckpt["train_args"]  # the dev carved by the run that made it (fraction and seed)
    ds = D.load_dataset("sms_spam", args["dev_fraction"], args["seed"])
    assert len(seqs) == len(labels) == len(ds.dev) and where.startswith("dev")
    dev_ids = {tuple(s) for s in D.encode(model_tokenizer(), ds.dev.texts, model.cfg.max_len)}
    assert {tuple(s) for s in seqs} == dev_ids
    assert len(ds.dev) > 100


def model_tokenizer():
    from hil.quant.quantize import tokenizer_for

    return tokenizer_for(SMS)
