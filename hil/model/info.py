"""Parameter and memory accounting of an EmbBERT config (`hil model info`), without torch.

Why without torch: the numbers follow from the config alone, and the memory table is what a user
checks against a board's flash and RAM before anything is trained or built.

Weights: fp32 is 4 bytes a parameter. The int8 estimate stores every matrix (embedding tables,
linear and conv weights) at 1 byte and every vector (biases, RMSNorm gains, lambda vectors) at
4 bytes (int32 biases, fixed-point gains), plus one 4-byte scale per tensor; the exact bytes are
the blob's (hil.quant), which this estimate does not replace.

Activations: the peak of one encoder layer at sequence length T, with the paper's accounting of
live buffers: the normalised input, the query, the attention output and the convolution branch
(4 x T x D values) plus the T x T attention scores. At T=256 and fp32 this plus the fp32 weights
gives 1,950,728 bytes: the paper's "EmbBERT 1.95 MB". int8 counts the same values at 1 byte, with
the scores' int32 accumulation row (T values) on top.
"""

from __future__ import annotations

from typing import Any

PAPER = {"embbert_fp32_bytes": 1_950_000, "embbert_q_bytes": 781_000}
#: EmbBERTConfig's defaults (the paper's model, 2 classes), kept here so `hil model info` runs
#: without torch; tests/test_model_train.py checks that the two agree.
PAPER_CONFIG: dict[str, Any] = {"vocab_size": 8192, "max_len": 256, "emb_dim": 16, "dim": 128,
                                "n_layers": 4, "n_heads": 1, "kernel": 32, "num_labels": 2,
                                "dropout": 0.0, "att_output": True, "segments": 3}


def tensor_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every parameter tensor of EmbBERT by its checkpoint name (mirrors hil/model/embbert.py)."""
    v, t, e, d, k, c = (cfg["vocab_size"], cfg["max_len"], cfg["emb_dim"], cfg["dim"],
                        cfg["kernel"], cfg["num_labels"])
    shapes: dict[str, tuple[int, ...]] = {
        "embed.tok.weight": (v, e), "embed.tok_proj.weight": (d, e),
        "embed.pos.weight": (t, e), "embed.pos_proj.weight": (d, e),
    }
    if cfg.get("segments", 0):
        shapes["embed.seg.weight"] = (cfg["segments"], d)
    for i in range(cfg["n_layers"]):
        p = f"layers.{i}."
        shapes.update({
            p + "norm.weight": (d,), p + "q.weight": (d, d), p + "q.bias": (d,),
            p + "conv.weight": (d, 1, k), p + "conv.bias": (d,),
            p + "proj.weight": (d, d), p + "proj.bias": (d,),
            p + "lambda_q1": (d,), p + "lambda_k1": (d,), p + "lambda_q2": (d,),
            p + "lambda_k2": (d,),
        })
        if cfg.get("att_output", False):
            shapes.update({p + "att_output.weight": (d, d), p + "att_output.bias": (d,)})
    shapes.update({"classifier.weight": (c, d), "classifier.bias": (c,)})
    return shapes


def _group(name: str) -> str:
    if name.startswith("embed."):
        return "embedder (" + name.split(".")[1] + ")"
    if name.startswith("layers."):
        return f"layer {name.split('.')[1]}"
    return "classifier"


def model_info(cfg: dict[str, Any], seq_len: int | None = None) -> dict[str, Any]:
    """Parameters and bytes per tensor group, activation peak, fp32 and int8 totals."""
    t = seq_len or cfg["max_len"]
    d = cfg["dim"]
    groups: dict[str, dict[str, int]] = {}
    for name, shape in tensor_shapes(cfg).items():
        n = 1
        for s in shape:
            n *= s
        g = groups.setdefault(_group(name), {"params": 0, "fp32_bytes": 0, "int8_bytes": 0,
                                             "tensors": 0})
        g["params"] += n
        g["tensors"] += 1
        g["fp32_bytes"] += 4 * n
        g["int8_bytes"] += (n if len(shape) >= 2 else 4 * n) + 4
    params = sum(g["params"] for g in groups.values())
    w32 = sum(g["fp32_bytes"] for g in groups.values())
    w8 = sum(g["int8_bytes"] for g in groups.values())
    act_values = 4 * t * d + t * t
    act32 = 4 * act_values
    act8 = act_values + 4 * t
    return {
        "config": dict(cfg), "seq_len": t, "groups": groups, "params": params,
        "params_without_classifier": params - groups["classifier"]["params"],
        "weights_fp32_bytes": w32, "weights_int8_bytes": w8,
        "activation_values": act_values,
        "activations_fp32_bytes": act32, "activations_int8_bytes": act8,
        "total_fp32_bytes": w32 + act32, "total_int8_bytes": w8 + act8,
        "paper": PAPER,
    }


def _kb(n: int) -> str:
    return f"{n / 1000:,.1f} kB"


def print_info(info: dict[str, Any]) -> None:
    """A rich table of `model_info`'s numbers."""
    from rich.console import Console
    from rich.table import Table

    c = Console()
    cfg = info["config"]
    tab = Table(title=f"EmbBERT  V={cfg['vocab_size']} T_max={cfg['max_len']} "
                      f"E={cfg['emb_dim']} D={cfg['dim']} L={cfg['n_layers']} "
                      f"K={cfg['kernel']} C={cfg['num_labels']}")
    for col in ("group", "tensors", "params", "fp32", "int8 (est.)"):
        tab.add_column(col, justify="left" if col == "group" else "right")
    for name, g in info["groups"].items():
        tab.add_row(name, str(g["tensors"]), f"{g['params']:,}", _kb(g["fp32_bytes"]),
                    _kb(g["int8_bytes"]))
    tab.add_row("weights", "", f"{info['params']:,}", _kb(info["weights_fp32_bytes"]),
                _kb(info["weights_int8_bytes"]), style="bold")
    tab.add_row(f"activations (peak, T={info['seq_len']})", "",
                f"{info['activation_values']:,} values", _kb(info["activations_fp32_bytes"]),
                _kb(info["activations_int8_bytes"]))
    tab.add_row("total", "", "", _kb(info["total_fp32_bytes"]), _kb(info["total_int8_bytes"]),
                style="bold")
    c.print(tab)
    c.print(f"paper (T=256): EmbBERT {_kb(PAPER['embbert_fp32_bytes'])} fp32, EmbBERT-Q "
            f"{_kb(PAPER['embbert_q_bytes'])} quantized. The int8 column is an estimate; the "
            "blob written by hil.quant has the exact bytes.")
