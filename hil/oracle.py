"""The host's side of every check: the tokenizer and the numpy integer reference of one blob.

What the device must answer for a text is what this says (docs/design.md, contract 1): the token
ids of hil/quant/tokenizer.py and the logits of hil/quant/reference.py, for the model blob the
firmware carries. Every front end judges through one Oracle (hil.session), and a run's jobs share
one, since loading a blob and its tokenizer is the slow part.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hil.errors import UsageError
from hil.paths import DEFAULT_TOKENIZER


class Oracle:
    """Host tokenizer + integer reference for one blob: what the device must answer."""

    def __init__(self, model_path: Path) -> None:
        from hil.quant.blob import read_blob
        from hil.quant.reference import dims_of
        from hil.quant.tokenizer import Tokenizer

        self.model_path = Path(model_path)
        self.blob_bytes = self.model_path.read_bytes()
        self.blob = read_blob(self.blob_bytes)
        self.model_id = int(self.blob.model_id)
        self.dims = dims_of(self.blob)
        meta = self.blob.meta
        self.labels: list[str] = [str(x) for x in meta.get("labels") or []]
        self.logit_scale: float | None = meta.get("logit_scale")
        # A model ships with the tokenizer it was trained with; fall back to the shared one.
        own = self.model_path.parent / "tokenizer.json"
        self.tokenizer = Tokenizer.from_file(own if own.is_file() else DEFAULT_TOKENIZER)

    @classmethod
    def load(cls, model_path: Path) -> Oracle:
        """The Oracle, or one UsageError (exit 2) for a missing, corrupt or foreign blob."""
        from hil.quant.blob import BlobError

        try:
            return cls(model_path)
        except FileNotFoundError:
            raise UsageError(f"model blob {model_path} does not exist") from None
        except (BlobError, ValueError, KeyError) as exc:
            raise UsageError(f"model blob {model_path} is not a valid EmbBERT-Q blob: "
                             f"{exc}") from None

    def ids(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer.encode(text, max_len=self.dims["max_len"])]

    def logits(self, ids: list[int]) -> list[int]:
        from hil.quant.reference import forward

        return [int(v) for v in np.asarray(forward(self.blob, ids)).tolist()]

    def label_name(self, label: int) -> str:
        return self.labels[label] if 0 <= label < len(self.labels) else str(label)


def softmax(logits: list[int], scale: float | None) -> list[float]:
    """Host-side probabilities: softmax(int32 logits x logit_scale). Without a scale the raw
    accumulators are used as they are (then they are not calibrated)."""
    if not logits:
        return []
    z = [v * (1.0 if scale is None else scale) for v in logits]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]
