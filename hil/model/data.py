"""Datasets for training and evaluation: reading splits, carving a dev split, batching, MLM masking.

A dataset is a directory with `train`, optional `dev` and `test` splits as `.jsonl`, `.jsonl.gz`
or `.csv` (columns `text`, `label`; the label an id or a name from `labels.json`). Reading is
torch-free; only `to_batches`/`mask_tokens` need torch (imported inside them) so that the
evaluation of a shipped model's metrics and the benchmark tables can be read without it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hil.errors import EnvironmentMissing
from hil.paths import datasets_dir
from hil.quant.tokenizer import CLS, MASK, PAD, SPECIAL_TOKENS, Tokenizer

if TYPE_CHECKING:
    import torch

#: The datasets root (hil.paths.datasets_dir: $HIL_DATA_DIR, ../shared/datasets beside a checkout,
#: else the per-user data folder), fixed when this module is imported.
SHARED_DATASETS = datasets_dir()
SPLIT_SUFFIXES = (".jsonl.gz", ".jsonl", ".csv.gz", ".csv")


@dataclass
class Split:
    """Texts and integer labels of one split."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Dataset:
    """train/dev/test of one task; `dev_source` says whether dev was shipped or carved."""

    name: str
    labels: list[str]
    train: Split
    dev: Split
    test: Split | None
    dev_source: str = "dev"
    path: Path = field(default_factory=Path)


class DatasetMissing(EnvironmentMissing, FileNotFoundError):
    """A dataset that is not on this machine: exit 2, and the message says `hil data fetch NAME`.
    Still a FileNotFoundError, for callers that caught that before."""


def resolve_dataset(name_or_path: str | Path) -> Path:
    """A directory path, or a dataset name looked up in the datasets root (SHARED_DATASETS)."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    q = SHARED_DATASETS / str(name_or_path)
    if q.is_dir():
        return q
    name = p.name if p.name else str(name_or_path)
    raise DatasetMissing(f"dataset {str(name_or_path)!r} is not here (no folder {p} nor {q}); "
                         f"fetch it with: hil data fetch {name}")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115


def find_split(directory: Path, split: str) -> Path | None:
    """The file of `split` in `directory` under any supported suffix, or None."""
    for suffix in SPLIT_SUFFIXES:
        p = directory / f"{split}{suffix}"
        if p.exists():
            return p
    return None


def read_split(path: Path, labels: list[str] | None = None) -> Split:
    """Read a jsonl(.gz) or csv(.gz) file of text/label rows; names are mapped through `labels`."""
    index = {name: i for i, name in enumerate(labels or [])}

    def label_id(raw: object, where: str) -> int:
        if isinstance(raw, int) or (isinstance(raw, str) and raw.strip().lstrip("-").isdigit()
                                    and raw not in index):
            return int(raw)  # type: ignore[arg-type]
        if isinstance(raw, str) and raw in index:
            return index[raw]
        raise ValueError(f"{where}: label {raw!r} is neither an id nor one of {labels}")

    texts: list[str] = []
    ids: list[int] = []
    with _open_text(path) as f:
        if ".csv" in path.name:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
                raise ValueError(f"{path}: expected a header with text,label; "
                                 f"got {reader.fieldnames}")
            for n, row in enumerate(reader, start=2):
                texts.append(row["text"])
                ids.append(label_id(row["label"], f"{path}:{n}"))
        else:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                row = json.loads(line)
                texts.append(row["text"])
                ids.append(label_id(row["label"], f"{path}:{n}"))
    return Split(texts, ids)


def carve_dev(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split off a stratified dev set with a fixed seed (same seed, same split, every run)."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(train.labels):
        by_class.setdefault(y, []).append(i)
    dev_idx: set[int] = set()
    for y in sorted(by_class):
        idx = by_class[y]
        rng.shuffle(idx)
        dev_idx.update(idx[: max(1, round(len(idx) * fraction))] if len(idx) > 1 else [])
    keep = [i for i in range(len(train)) if i not in dev_idx]
    dev = sorted(dev_idx)
    pick = lambda ix: Split([train.texts[i] for i in ix], [train.labels[i] for i in ix])  # noqa: E731
    return pick(keep), pick(dev)


def load_dataset(name_or_path: str | Path, dev_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Load a dataset directory; carve dev from train (fixed seed) when no dev split exists."""
    d = resolve_dataset(name_or_path)
    labels_file = d / "labels.json"
    labels: list[str] | None = json.loads(labels_file.read_text()) if labels_file.exists() else None
    train_path = find_split(d, "train")
    if train_path is None:
        raise FileNotFoundError(f"{d}: no train split (train.jsonl[.gz] or train.csv[.gz])")
    train = read_split(train_path, labels)
    dev_path, test_path = find_split(d, "dev"), find_split(d, "test")
    test = read_split(test_path, labels) if test_path else None
    if dev_path is not None:
        dev, source = read_split(dev_path, labels), "dev"
    else:
        train, dev = carve_dev(train, dev_fraction, seed)
        source = f"carved {dev_fraction:.0%} of train, stratified, seed {seed}"
    if labels is None:
        n = 1 + max(train.labels + dev.labels + (test.labels if test else []))
        labels = [str(i) for i in range(n)]
    for name, split in (("train", train), ("dev", dev), ("test", test)):
        if split is not None and split.labels and not 0 <= min(split.labels) <= max(
                split.labels) < len(labels):
            raise ValueError(f"{d}/{name}: label ids outside 0..{len(labels) - 1}")
    return Dataset(d.name, labels, train, dev, test, source, d)


def encode(tok: Tokenizer, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Token ids ([CLS] + pieces, truncated) for many texts."""
    out: list[list[int]] = []
    for i in range(0, len(texts), 4096):
        out.extend(tok.encode_batch(list(texts[i:i + 4096]), max_len=max_len))
    return out


def pad(seqs: Sequence[Sequence[int]]) -> torch.Tensor:
    """(B, T) int64 tensor right-padded with [PAD]=0 to the longest sequence."""
    import torch

    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def batch_order(lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int
                ) -> list[list[int]]:
    """Index batches. Shuffled training batches are length-bucketed within windows of 50
    batches: padding costs real time on two CPU cores, and since padded keys are masked the
    logits do not depend on it (tests/test_model_shapes.py)."""
    idx = list(range(len(lengths)))
    if not shuffle:
        idx.sort(key=lambda i: lengths[i])
        return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(idx)
    window = batch_size * 50
    batches: list[list[int]] = []
    for w in range(0, len(idx), window):
        chunk = sorted(idx[w:w + window], key=lambda i: lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def iter_batches(ids: Sequence[Sequence[int]], labels: Sequence[int], batch_size: int,
                 shuffle: bool, seed: int = 0
                 ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (indices, ids (B,T), labels (B,)) batches."""
    import torch

    for b in batch_order([len(s) for s in ids], batch_size, shuffle, seed):
        yield b, pad([ids[i] for i in b]), torch.tensor([labels[i] for i in b], dtype=torch.long)


def mask_tokens(ids: torch.Tensor, vocab_size: int, generator: torch.Generator,
                prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: pick 15% of real non-[CLS] tokens; of those 80% -> [MASK], 10% -> a random
    ordinary token, 10% unchanged. Returns (inputs, targets) with targets -100 where not picked."""
    import torch

    special = ids < len(SPECIAL_TOKENS)
    special &= ids != 1  # [UNK] is an ordinary (predictable) token
    real = (ids != PAD) & (ids != CLS) & ~special
    picked = (torch.rand(ids.shape, generator=generator) < prob) & real
    targets = torch.where(picked, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[picked & (roll < 0.8)] = MASK
    rand_pos = picked & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(len(SPECIAL_TOKENS), vocab_size, ids.shape, generator=generator)
    inputs[rand_pos] = random_ids[rand_pos]
    return inputs, targets


def read_corpus(path: Path, limit: int | None = None) -> list[str]:
    """Documents of a pretraining corpus (one a line, .gz allowed)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    out: list[str] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(line)
                if limit is not None and len(out) >= limit:
                    break
    return out
