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
        input itself, so no n x n projection matrices exist and no K/V weights are stored;
    (b) causal depthwise convolution (kernel K) -> SiLU -> linear D -> D.
    out = exp(lq1 . lk1) * attn - exp(lq2 . lk2) * conv. There is no other residual and no FFN.
    """

    def __init__(self, dim: int, kernel: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim, self.kernel = dim, kernel
        self.norm = RMSNorm(dim)
        self.q = nn.Linear(dim, dim)  # (D, D) + (D,)
        self.conv = nn.Conv1d(dim, dim, kernel, groups=dim)  # weight (D, 1, K) + (D,)
        self.proj = nn.Linear(dim, dim)  # (D, D) + (D,)
        self.lambda_q1 = nn.Parameter(torch.randn(dim) * 0.1)  # (D,)
        self.lambda_k1 = nn.Parameter(torch.randn(dim) * 0.1)
        self.lambda_q2 = nn.Parameter(torch.randn(dim) * 0.1)
        self.lambda_k2 = nn.Parameter(torch.randn(dim) * 0.1)
        self.drop = nn.Dropout(dropout)

    def branch_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The two scalar weights of the differential combination, (a, b)."""
        a = torch.exp(torch.dot(self.lambda_q1, self.lambda_k1))
        b = torch.exp(torch.dot(self.lambda_q2, self.lambda_k2))
        return a, b

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """softmax(q x^T / sqrt(D)) x with padded keys masked; x (B,T,D), mask (B,T) True = real."""
        q = self.q(x)  # (B,T,D)
        scores = q @ x.transpose(1, 2) / math.sqrt(self.dim)  # (B,T,T)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        return torch.softmax(scores, dim=-1) @ x  # (B,T,D)

    def convolution(self, x: torch.Tensor) -> torch.Tensor:
        """Causal depthwise conv: output t sees inputs t-K+1..t only (left zero padding)."""
        h = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))  # (B,D,T+K-1)
        h = self.conv(h).transpose(1, 2)  # (B,T,D)
        return self.proj(F.silu(h))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        a, b = self.branch_scales()
        return self.drop(a * self.attention(x, mask) - b * self.convolution(x))


class NanoEmbedder(nn.Module):
    """Token and position embeddings of a small dim E, each projected to D by a bias-free linear."""

    def __init__(self, vocab: int, max_len: int, emb: int, dim: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, emb)  # (V, E)
        self.tok_proj = nn.Linear(emb, dim, bias=False)  # (D, E)
        self.pos = nn.Embedding(max_len, emb)  # (T_max, E)
        self.pos_proj = nn.Linear(emb, dim, bias=False)  # (D, E)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.tok_proj(self.tok(ids)) + self.pos_proj(self.pos(positions))[None]  # (B,T,D)


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
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class EmbBERT(nn.Module):
    """Nano Embedder -> n_layers encoder layers -> linear classifier on the [CLS] position.

    `encode` also serves masked-LM pretraining (tied to `mlm_head`, used in training only).
    """

    def __init__(self, cfg: EmbBERTConfig) -> None:
        super().__init__()
        if cfg.n_heads != 1:
            raise ValueError("EmbBERT has a single attention head (n_heads=1)")
        self.cfg = cfg
        self.embed = NanoEmbedder(cfg.vocab_size, cfg.max_len, cfg.emb_dim, cfg.dim)
        self.layers = nn.ModuleList(EncoderLayer(cfg.dim, cfg.kernel, cfg.dropout)
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
