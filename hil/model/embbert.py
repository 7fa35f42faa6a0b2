"""EmbBERT (Bravin et al., 2025) in PyTorch: the model the toolkit deploys.

Bottom-up, nanoGPT style: RMSNorm, the encoder layer (efficient attention + causal convolution,
combined differentially), the Nano Embedder, then the config and the model. Parameter names are
the checkpoint's names and the quantizer's (hil/quant) input; change them only together.

Shapes: B batch, T tokens, D model dim (128), E embedding dim (16), V vocab, C classes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned gain (no mean subtraction, no bias)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (D,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * rms * self.weight


class EncoderLayer(nn.Module):
    """One EmbBERT layer: norm, then two branches on the normalised input, combined differentially.

    (a) efficient attention: only the query is projected; keys and values are the normalised
        input itself, so no n x n projection matrices exist and no K/V weights are stored; the
        context then goes through the output projection att_output (D -> D, with bias), as in
        the reference implementation (`att_output=False`: no projection, the earlier variant);
    (b) causal depthwise convolution (kernel K) -> SiLU -> linear D -> D.
    out = exp(lq1 . lk1) * attn - exp(lq2 . lk2) * conv. There is no other residual and no FFN.
    Dropout sits where the reference has it: on the attention weights.
    """

    def __init__(self, dim: int, kernel: int, dropout: float = 0.0,
                 att_output: bool = True) -> None:
        super().__init__()
        self.dim, self.kernel = dim, kernel
        self.norm = RMSNorm(dim)
        self.q = nn.Linear(dim, dim)  # (D, D) + (D,)
        self.att_output = nn.Linear(dim, dim) if att_output else None  # (D, D) + (D,)
        self.conv = nn.Conv1d(dim, dim, kernel, groups=dim)  # weight (D, 1, K) + (D,)
        self.proj = nn.Linear(dim, dim)  # (D, D) + (D,)
        self.lambda_q1 = nn.Parameter(torch.randn(dim) * 0.1)  # (D,)
        self.lambda_k1 = nn.Parameter(torch.randn(dim) * 0.1)
        self.lambda_q2 = nn.Parameter(torch.randn(dim) * 0.1)
        self.lambda_k2 = nn.Parameter(torch.randn(dim) * 0.1)
        self.attn_drop = nn.Dropout(dropout)  # on the attention weights, as the reference

    def branch_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The two scalar weights of the differential combination, (a, b)."""
        a = torch.exp(torch.dot(self.lambda_q1, self.lambda_k1))
        b = torch.exp(torch.dot(self.lambda_q2, self.lambda_k2))
        return a, b

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """att_output(drop(softmax(q x^T / sqrt(D))) x), padded keys masked; x (B,T,D), mask
        (B,T) True = real."""
        q = self.q(x)  # (B,T,D)
        scores = q @ x.transpose(1, 2) / math.sqrt(self.dim)  # (B,T,T)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        context = self.attn_drop(torch.softmax(scores, dim=-1)) @ x  # (B,T,D)
        return context if self.att_output is None else self.att_output(context)

    def convolution(self, x: torch.Tensor) -> torch.Tensor:
        """Causal depthwise conv: output t sees inputs t-K+1..t only (left zero padding)."""
        h = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))  # (B,D,T+K-1)
        h = self.conv(h).transpose(1, 2)  # (B,T,D)
        return self.proj(F.silu(h))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        a, b = self.branch_scales()
        return a * self.attention(x, mask) - b * self.convolution(x)


class NanoEmbedder(nn.Module):
    """Token and position embeddings of a small dim E, each projected to D by a bias-free linear,
    plus the reference's segment embedding (S segments, directly of dim D; S = 0: none).

    Every input here is one sentence, segment 0, so the segment embedding adds one constant
    vector: the quantizer folds it into a bias (docs/int8-spec.md) and the device stores D int32.
    """

    def __init__(self, vocab: int, max_len: int, emb: int, dim: int, segments: int = 0) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, emb)  # (V, E)
        self.tok_proj = nn.Linear(emb, dim, bias=False)  # (D, E)
        self.pos = nn.Embedding(max_len, emb)  # (T_max, E)
        self.pos_proj = nn.Linear(emb, dim, bias=False)  # (D, E)
        self.seg = nn.Embedding(segments, dim) if segments else None  # (S, D)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok_proj(self.tok(ids)) + self.pos_proj(self.pos(positions))[None]  # (B,T,D)
        return x if self.seg is None else x + self.seg.weight[0]


@dataclass
class EmbBERTConfig:
    """Defaults are the paper's EmbBERT-Q."""

    vocab_size: int = 8192
    max_len: int = 256  # tokens, [CLS] included
    emb_dim: int = 16
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 1  # the paper's single head; kept for the record, the code has one head
    kernel: int = 32
    num_labels: int = 2
    dropout: float = 0.0  # on the attention weights
    att_output: bool = True  # the reference's attention output projection (False: 66k fewer)
    segments: int = 3  # the reference's segment vocabulary (0: no segment embedding)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EmbBERTConfig:
        """A checkpoint's config. Checkpoints written before att_output and segments existed
        hold neither, so a missing key means the variant without them (not today's default)."""
        return cls(**{**LEGACY_FIELDS, **d})


#: What a config dict without these keys describes: the model before issue #18.
LEGACY_FIELDS = {"att_output": False, "segments": 0}


class EmbBERT(nn.Module):
    """Nano Embedder -> n_layers encoder layers -> linear classifier on the [CLS] position.

    `encode` also serves masked-LM pretraining (tied to `mlm_head`, used in training only).
    """

    def __init__(self, cfg: EmbBERTConfig) -> None:
        super().__init__()
        if cfg.n_heads != 1:
            raise ValueError("EmbBERT has a single attention head (n_heads=1)")
        self.cfg = cfg
        self.embed = NanoEmbedder(cfg.vocab_size, cfg.max_len, cfg.emb_dim, cfg.dim, cfg.segments)
        self.layers = nn.ModuleList(EncoderLayer(cfg.dim, cfg.kernel, cfg.dropout, cfg.att_output)
                                    for _ in range(cfg.n_layers))
        self.classifier = nn.Linear(cfg.dim, cfg.num_labels)  # (C, D) + (C,)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B,T) -> hidden states (B,T,D); mask True where the token is real (not [PAD])."""
        if mask is None:
            mask = ids != 0
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B,T) with [CLS] at position 0 -> logits (B,C)."""
        return self.classifier(self.encode(ids, mask)[:, 0])

    def num_params(self, with_head: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n if with_head else n - sum(p.numel() for p in self.classifier.parameters())
