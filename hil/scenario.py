"""Scenarios: a YAML file that says what to stream to which board and what "pass" means.

```yaml
name: nlu_scenario
board: netduinoplus2          # default board; `hil run --board` overrides
model: nlu_scenario           # hil/models/<name>/model.bin, or a path to a blob
sentences: data/nlu_scenario_test.jsonl   # relative to this file
labels: data/nlu_scenario_labels.json     # optional: label names, index = id
timeout_s: 60                 # per sentence, host wall time
retries: 2                    # re-sends after a timeout or a damaged frame (0..100)
expect:                       # every key optional
  min_accuracy: 0.70
  min_agreement: 1.0
  max_cycles_p95: 50000000
  max_ram_bytes: 131072
```

Sentence files: `.jsonl` with `{"text": ..., "label": <int>}` per line (label optional), or `.txt`
with one sentence per line (no labels: accuracy is then not measured, agreement still is).

Why a schema (jsonschema): a typo'd key, a string timeout or `retries: -1` used to be taken as
given and show up much later as a run that sent nothing and passed. The file is checked when it
is loaded, and the error names the file, the key and what is allowed. A sentence that cannot be
sent (text that is not valid Unicode) is found here too and carries its `problem`: the runner
records it as that sentence's error, without stopping the run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hil.paths import SCENARIO_DIR, find_model

DEFAULT_SCENARIO = "nlu_scenario"
EXPECT_KEYS = ("min_accuracy", "min_agreement", "max_cycles_p95", "max_ram_bytes")
_TEXT = {"type": "string", "minLength": 1, "description": "a non-empty string"}
_FRACTION = {"type": ["number", "null"], "minimum": 0, "maximum": 1,
             "description": "a fraction from 0 to 1"}
_POSITIVE = {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "a number > 0"}
SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["model", "sentences"],
    "description": "a mapping with keys name, board, model, sentences, labels, timeout_s, "
                   "retries, expect",
    "properties": {
        "name": _TEXT, "board": {**_TEXT, "type": ["string", "null"]}, "model": _TEXT,
        "sentences": {**_TEXT, "description": "a .jsonl or .txt file, relative to the scenario"},
        "labels": {"type": ["string", "null"], "description": "a .json list of label names"},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0,
                      "description": "seconds per sentence, a number > 0"},
        "retries": {"type": "integer", "minimum": 0, "maximum": 100,
                    "description": "re-sends per sentence, an integer from 0 to 100"},
        "expect": {"type": ["object", "null"], "additionalProperties": False,
                   "description": f"a mapping with keys {', '.join(EXPECT_KEYS)}",
                   "properties": {"min_accuracy": _FRACTION, "min_agreement": _FRACTION,
                                  "max_cycles_p95": _POSITIVE, "max_ram_bytes": _POSITIVE}},
    },
}


class ScenarioError(ValueError):
    """A scenario file or something it names is missing or malformed."""


@dataclass(frozen=True)
class Sentence:
    index: int  # position in the sentences file: the key for resume, shards and merge order
    text: str
    label: int | None
    problem: str | None = None  # why this text cannot be sent (not valid Unicode); None = fine


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


def text_problem(text: str) -> str | None:
    """Why `text` cannot go on the wire as UTF-8 (a lone surrogate from JSON "\\ud800", or a byte
    that was not UTF-8 in a .txt file), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"text is not valid Unicode: {exc.reason} {text[exc.start]!r} at character "
                f"{exc.start}; it cannot be sent as UTF-8")
    return None


def load_sentences(path: Path) -> list[Sentence]:
    """Read a .jsonl (text + optional label) or .txt (one sentence a line) file. Bytes that are
    not UTF-8 are kept (surrogate-escaped) and the sentence gets a `problem`, not an exception."""
    if not path.is_file():
        raise ScenarioError(f"sentences file {path} does not exist")
    out: list[Sentence] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            label = None
            text = line
            if path.suffix == ".jsonl":
                try:
                    row = json.loads(line)
                    text, label = row["text"], row.get("label")
                    label = None if label is None else int(label)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise ScenarioError(f"{path}:{lineno}: expected {{\"text\": ..., "
                                        f"\"label\": n}}, got {line[:80]!r} ({exc})") from None
            text = str(text)
            problem = text_problem(text)
            out.append(Sentence(len(out), text, label,
                                None if problem is None else f"{path}:{lineno}: {problem}"))
    return out


def selection_digest(sentences: list[Sentence]) -> str:
    """sha256 of the selected sentences (index, text, label): what a run folder's results belong
    to, so --resume can refuse a folder made from other sentences."""
    h = hashlib.sha256()
    for s in sentences:
        h.update(json.dumps([s.index, s.text, s.label], ensure_ascii=True).encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


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


def _validated(path: Path) -> dict[str, Any]:
    """The YAML mapping, checked against SCHEMA; ScenarioError names the file, the key and what
    is allowed there."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    data = {} if data is None else data
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SCHEMA)
                                           .iter_errors(data))
    if err is None:
        return data
    where = "key " + ".".join(map(str, err.absolute_path)) if err.absolute_path else "top level"
    allowed = err.schema.get("description", "") if isinstance(err.schema, dict) else ""
    raise ScenarioError(f"{path}: {where}: {err.message}"
                        + (f"; allowed: {allowed}" if allowed else ""))


def _labels(path: Path, ref: str | None) -> list[str] | None:
    """The label names file next to the scenario, a JSON list of strings."""
    if not ref:
        return None
    try:
        labels = json.loads((path.parent / ref).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: key labels: cannot read {path.parent / ref}: {exc}") from None
    if not isinstance(labels, list):
        raise ScenarioError(f"{path}: key labels: {ref} must hold a JSON list of label names")
    return [str(x) for x in labels]


def load_scenario(name_or_path: str) -> Scenario:
    path = scenario_path(name_or_path)
    if not path.is_file():
        known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
        raise ScenarioError(f"scenario {name_or_path!r} not found ({path}); scenarios: "
                            f"{', '.join(known)}")
    data = _validated(path)
    expect = data.get("expect") or {}
    labels = _labels(path, data.get("labels"))
    return Scenario(
        name=str(data.get("name") or path.stem), path=path.resolve(), board=data.get("board"),
        model=str(data["model"]), sentences_path=(path.parent / data["sentences"]).resolve(),
        labels=labels, timeout_s=float(data.get("timeout_s", 60.0)),
        retries=int(data.get("retries", 2)),
        expect={k: float(v) for k, v in expect.items() if v is not None},
    )


def judge_expectations(expect: dict[str, float], actual: dict[str, float | None], *,
                       ram_limited: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each expectation against its measured value: (verdicts by name, failures as text).

    `min_*` must be reached, `max_*` not exceeded; a value that was not measured fails (a
    verdict cannot rest on a number nobody took), except the RAM limit of a board that has
    none (native), which does not apply (ok None).
    """
    verdicts: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name, limit in expect.items():
        value = actual.get(name)
        if name == "max_ram_bytes" and not ram_limited:
            verdicts[name] = {"limit": limit, "value": None, "ok": None,
                              "note": "not applicable: this board has no RAM limit"}
            continue
        good = value is not None and (value >= limit if name.startswith("min_")
                                      else value <= limit)
        verdicts[name] = {"limit": limit, "value": value, "ok": good}
        if not good:
            failed.append(f"{name}: expected {'>=' if name.startswith('min_') else '<='} "
                          f"{limit:g}, got {'not measured' if value is None else f'{value:g}'}")
    return verdicts, failed
