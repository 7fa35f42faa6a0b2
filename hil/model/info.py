"""Parameter and memory accounting of an EmbBERT config (`hil model info`), without torch.

Why without torch: the numbers follow from the config alone, and the memory table is what a user
checks against a board's flash and RAM before anything is trained or built.

Two accountings, side by side, because they count different things (issue #18):

- **The paper's** (Bravin et al., 2025), applied to this config: backbone weights in fp32
  (4 bytes a parameter, classifier excluded) plus activations of 4 x T x D fp32 values. For the
  default config at T=256 that is 1,428,992 + 524,288 B = 1.95 MB, the paper's "EmbBERT" figure.
  The paper's EmbBERT-Q (781 kB) stores weights in bitsandbytes 8-bit with fp16 parts and is not
  integer-only: it has no counterpart here.
- **This project's**: every parameter (classifier included); fp32 activations as the live
  buffers of one layer in training/torch (normalised input, query, attention output,
  convolution branch: 4 x T x D values, plus the T x T scores); int8 weights as an estimate of
  the blob (matrices 1 byte a weight, vectors int32, one scale per tensor; `hil blob info` has
  the exact bytes); int8 activations on the device are the engine's arena, which is measured by
  painting it on QEMU (`python benchmarks/quant_memory.py`, docs/memory.md), not estimated here.
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
    backbone = params - groups["classifier"]["params"]
    paper_w, paper_a = 4 * backbone, 4 * (4 * t * d)
    return {
        "config": dict(cfg), "seq_len": t, "groups": groups, "params": params,
        "params_without_classifier": backbone,
        "weights_fp32_bytes": w32, "weights_int8_bytes": w8,
        "activation_values": act_values,
        "activations_fp32_bytes": act32, "activations_int8_bytes": act8,
        "total_fp32_bytes": w32 + act32, "total_int8_bytes": w8 + act8,
        "paper_accounting": {"weights_fp32_bytes": paper_w, "activations_fp32_bytes": paper_a,
                             "total_bytes": paper_w + paper_a,
                             "counts": "backbone weights fp32; 4 x T x D fp32 activations"},
        "paper": PAPER,
    }


def _kb(n: int) -> str:
    return f"{n / 1000:,.1f} kB"


def print_info(info: dict[str, Any]) -> None:
    """A rich table of `model_info`'s numbers, then both accountings side by side."""
    from rich.console import Console
    from rich.table import Table

    c = Console()
    cfg = info["config"]
    variant = "" if cfg.get("att_output", False) else " (no att_output)"
    tab = Table(title=f"EmbBERT{variant}  V={cfg['vocab_size']} T_max={cfg['max_len']} "
                      f"E={cfg['emb_dim']} D={cfg['dim']} L={cfg['n_layers']} "
                      f"K={cfg['kernel']} C={cfg['num_labels']}")
    for col in ("group", "tensors", "params", "fp32", "int8 (est.)"):
        tab.add_column(col, justify="left" if col == "group" else "right")
    for name, g in info["groups"].items():
        tab.add_row(name, str(g["tensors"]), f"{g['params']:,}", _kb(g["fp32_bytes"]),
                    _kb(g["int8_bytes"]))
    tab.add_row("weights", "", f"{info['params']:,}", _kb(info["weights_fp32_bytes"]),
                _kb(info["weights_int8_bytes"]), style="bold")
    c.print(tab)
    c.print(f"backbone (without the classifier): {info['params_without_classifier']:,} "
            "parameters (the paper's EmbBERT-Q: 357,248)")
    pa, t = info["paper_accounting"], info["seq_len"]
    mem = Table(title=f"memory at T={t}: two accountings, not one number")
    for col in ("", "paper's accounting", "this project, fp32 (torch)",
                "this project, int8 (device)"):
        mem.add_column(col, justify="left" if not col else "right")
    mem.add_row("weights", f"{_kb(pa['weights_fp32_bytes'])} fp32, backbone",
                f"{_kb(info['weights_fp32_bytes'])} fp32, all",
                f"~{_kb(info['weights_int8_bytes'])} int8 + int32 vectors (blob: exact)")
    mem.add_row("activations", f"{_kb(pa['activations_fp32_bytes'])} (4TD fp32)",
                f"{_kb(info['activations_fp32_bytes'])} (4TD + T² fp32)",
                "the arena, measured: benchmarks/quant_memory.py")
    mem.add_row("total", _kb(pa["total_bytes"]), _kb(info["total_fp32_bytes"]), "flash + RAM "
                "measured: docs/memory.md", style="bold")
    c.print(mem)
    c.print(f"The paper reports EmbBERT {_kb(PAPER['embbert_fp32_bytes'])} (its accounting, "
            f"T=256) and EmbBERT-Q {_kb(PAPER['embbert_q_bytes'])} (bitsandbytes 8-bit weights "
            "with fp16 parts); this project is integer-only, so that figure has no counterpart "
            "here.")
