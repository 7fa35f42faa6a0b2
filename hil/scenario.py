"""Scenarios: a YAML file that says what to stream to which board and what "pass" means.

```yaml
name: nlu_scenario
board: netduinoplus2          # default board; `hil run --board` overrides
model: nlu_scenario           # hil/models/<name>/model.bin, or a path to a blob
sentences: data/nlu_scenario_test.jsonl   # relative to this file
labels: data/nlu_scenario_labels.json     # optional: label names, index = id
timeout_s: 60                 # per sentence, host wall time
retries: 2                    # re-sends after a timeout
expect:                       # every key optional
  min_accuracy: 0.70
  min_agreement: 1.0
  max_cycles_p95: 50000000
  max_ram_bytes: 131072
```

Sentence files: `.jsonl` with `{"text": ..., "label": <int>}` per line (label optional), or `.txt`
with one sentence per line (no labels: accuracy is then not measured, agreement still is).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hil.paths import SCENARIO_DIR, find_model

DEFAULT_SCENARIO = "nlu_scenario"
EXPECT_KEYS = ("min_accuracy", "min_agreement", "max_cycles_p95", "max_ram_bytes")


class ScenarioError(ValueError):
    """A scenario file or something it names is missing or malformed."""


@dataclass(frozen=True)
class Sentence:
    index: int  # position in the sentences file: the key for resume, shards and merge order
    text: str
    label: int | None


@dataclass
class Scenario:
    name: str
    path: Path | None
    board: str | None
    model: str
    sentences_path: Path
    labels: list[str] | None = None
    timeout_s: float = 60.0
    retries: int = 2
    expect: dict[str, float] = field(default_factory=dict)

    def load_sentences(self) -> list[Sentence]:
        return load_sentences(self.sentences_path)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path) if self.path else None,
                "board": self.board, "model": self.model,
                "sentences": str(self.sentences_path), "timeout_s": self.timeout_s,
                "retries": self.retries, "expect": self.expect}


def load_sentences(path: Path) -> list[Sentence]:
    """Read a .jsonl (text + optional label) or .txt (one sentence a line) file."""
    if not path.is_file():
        raise ScenarioError(f"sentences file {path} does not exist")
    out: list[Sentence] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if path.suffix == ".jsonl":
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    text, label = row["text"], row.get("label")
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ScenarioError(f"{path}:{lineno}: expected {{\"text\": ..., "
                                        f"\"label\": n}}, got {line[:80]!r} ({exc})") from None
                out.append(Sentence(len(out), str(text), None if label is None else int(label)))
            else:
                if line.strip():
                    out.append(Sentence(len(out), line, None))
    return out


def resolve_model(model: str, base: Path | None = None) -> Path:
    """A model name (hil/models/<name>/model.bin) or a path (absolute, cwd or next to `base`)."""
    try:
        return find_model(model, "model.bin", base)
    except FileNotFoundError as exc:
        raise ScenarioError(str(exc)) from None


def scenario_path(name_or_path: str) -> Path:
    """`nlu_scenario` -> scenarios/nlu_scenario.yaml; a path is taken as is."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return path
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str) -> Scenario:
    path = scenario_path(name_or_path)
    if not path.is_file():
        known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
        raise ScenarioError(f"scenario {name_or_path!r} not found ({path}); scenarios: "
                            f"{', '.join(known)}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level")
    for key in ("model", "sentences"):
        if key not in data:
            raise ScenarioError(f"{path}: missing key {key!r}")
    expect = data.get("expect") or {}
    unknown = set(expect) - set(EXPECT_KEYS)
    if unknown:
        raise ScenarioError(f"{path}: unknown expectation(s) {sorted(unknown)}; known: "
                            f"{', '.join(EXPECT_KEYS)}")
    labels = None
    if data.get("labels"):
        labels = json.loads((path.parent / data["labels"]).read_text())
    return Scenario(
        name=str(data.get("name") or path.stem), path=path.resolve(), board=data.get("board"),
        model=str(data["model"]), sentences_path=(path.parent / data["sentences"]).resolve(),
        labels=labels, timeout_s=float(data.get("timeout_s", 60.0)),
        retries=int(data.get("retries", 2)),
        expect={k: float(v) for k, v in expect.items() if v is not None},
    )
