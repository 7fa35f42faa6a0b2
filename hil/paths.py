"""Where the package's things are: shipped models, scenarios, firmware sources, data and caches.

One module so that every address is defined once. Why the indirection: in a checkout the firmware
and scenarios sit beside the `hil` package (the source of truth), while an installed wheel carries
them as package data under `hil/_data/`; the team's datasets sit in `../shared/datasets` on the
development machines but anywhere else on a user's (`$HIL_DATA_DIR`, else the per-user data
folder). Nothing else in hil computes a path from `__file__`.

This module is the floor: it imports nothing from hil.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent  # the repository root when running from a checkout
_PACKAGED = PACKAGE_DIR / "_data"  # where a wheel carries firmware/ and scenarios/

#: Shipped models: hil/models/<name>/{model.pt, model.bin, tokenizer.json, card.md}.
MODELS_DIR = PACKAGE_DIR / "models"
#: The shared WordPiece vocabulary (models may ship their own beside model.bin).
DEFAULT_TOKENIZER = MODELS_DIR / "tokenizer.json"


def _source_dir(name: str) -> Path:
    """`name` from the checkout when there is one, else from the wheel's package data."""
    here = CHECKOUT_DIR / name
    return here if here.is_dir() else _PACKAGED / name


FIRMWARE_DIR = _source_dir("firmware")
SCENARIO_DIR = _source_dir("scenarios")


def find_model(name_or_path: str | Path, filename: str, base: Path | None = None) -> Path:
    """A model file: a path to it, a folder holding `filename`, a path relative to `base`, or a
    shipped model's name (hil/models/<name>/<filename>). FileNotFoundError lists what was tried
    and which models are shipped. The one resolver for blobs (model.bin) and checkpoints
    (model.pt) alike."""
    p = Path(name_or_path)
    candidates = [p, p / filename]
    if base is not None:
        candidates += [base / p, base / p / filename]
    candidates.append(MODELS_DIR / str(name_or_path) / filename)
    for cand in candidates:
        if cand.is_file():
            return cand.resolve()
    shipped = sorted(d.parent.name for d in MODELS_DIR.glob(f"*/{filename}"))
    raise FileNotFoundError(f"model {str(name_or_path)!r} not found (tried "
                            f"{', '.join(map(str, candidates))}); shipped models: "
                            f"{', '.join(shipped) or 'none'}")


def datasets_dir() -> Path:
    """The datasets root: $HIL_DATA_DIR, else ../shared/datasets beside the checkout, else the
    per-user data folder (where a data fetch puts them)."""
    env = os.environ.get("HIL_DATA_DIR")
    if env:
        return Path(env)
    shared = CHECKOUT_DIR.parent / "shared" / "datasets"
    if shared.is_dir():
        return shared
    import platformdirs

    return Path(platformdirs.user_data_dir("embbert-hil")) / "datasets"


def runs_dir() -> Path:
    """Where run folders go by default (`hil run`, `hil console`, a BoardSession without a run
    folder, the Robot library outside Robot): $HIL_RUNS_DIR, else ./hil-runs. One folder, relative
    to where the command runs, so that outputs never land inside the package or spread over the
    checkout (.gitignore lists hil-runs/)."""
    env = os.environ.get("HIL_RUNS_DIR")
    return Path(env) if env else Path("hil-runs")


def cache_dir() -> Path:
    """Per-user cache (firmware builds): $HIL_CACHE_DIR, else the platform's cache folder."""
    env = os.environ.get("HIL_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("embbert-hil"))
