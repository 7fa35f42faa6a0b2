"""E-mail to text for the spam_assassin recipe (../shared/datasets/README.md step 5): the decoded
Subject, then the body text, from one raw RFC-822 message.

Why apart from hil/data_recipes.py: MIME walking and charset guessing are a topic of their own,
and that module would pass 500 lines. Every rule below was checked by rebuilding against the
team's copy (all 5,914 texts equal):

- charsets: a byte string is tried as UTF-8 first, then as its declared charset, then Latin-1
  (so ISO-2022-JP, being 7-bit, stays as its escape sequences, as in the team's copy);
- Subject: encoded words decoded; raw 8-bit bytes decoded with the first charset declared
  anywhere in the message (13 Asian spams declare none and stay Latin-1 mojibake);
- body: multipart/alternative gives its text/plain part (text/html if it has none), every other
  multipart (mixed, related, signed, report, an attached message) the bodies of all its parts in
  order; leaf text parts marked as attachments are skipped;
- HTML: `<head>`, `<style>`, `<script>` blocks and comments become a space, inline tags vanish,
  every other tag (`<!DOCTYPE>`, `<td>`, `<option>`, `<o:p>`...) becomes a space, then entities
  are decoded (also those without `;`, like `&nbsp`).

Floor 0 (docs/design.md): imports nothing from hil.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import re
from email.header import decode_header

_BLOCKS = re.compile(r"<(style|script|head)\b.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_TAG = re.compile(r"<!?/?[A-Za-z][^>]*>")
_INLINE = re.compile(r"</?(?:a|abbr|b|big|cite|code|em|font|i|s|small|span|strike|strong|sub|"
                     r"sup|tt|u)\b", re.I)


def decode(raw: bytes, charset: str | None) -> str:
    """UTF-8 if it is, else the declared charset if known and valid, else Latin-1."""
    for name in ("utf-8", charset):
        if name:
            try:
                return raw.decode(name)
            except (LookupError, UnicodeDecodeError):
                pass
    return raw.decode("latin-1")


def html_text(text: str) -> str:
    """The text of an HTML body (see the module doc); cleaning follows later."""
    text = _TAG.sub(lambda m: "" if _INLINE.match(m.group(0)) else " ", _BLOCKS.sub(" ", text))
    return html.unescape(text)


def subject(msg: email.message.Message) -> str:
    raw = next((v for k, v in msg.raw_items() if k.lower() == "subject"), None)
    if raw is None:
        return ""
    charset = next((p.get_content_charset() for p in msg.walk() if p.get_content_charset()), None)
    out = []
    for chunk, chunk_charset in decode_header(str(raw)):
        if isinstance(chunk, str):  # no encoded words: the header's own bytes
            chunk = chunk.encode("ascii", "surrogateescape")
        out.append(decode(chunk, chunk_charset or charset))
    return "".join(out)


def bodies(part: email.message.Message) -> list[str]:
    """The body texts of `part`, in order (see the module doc)."""
    if part.is_multipart():
        kids = part.get_payload()
        if part.get_content_type() == "multipart/alternative":
            kids = ([k for k in kids if k.get_content_type() == "text/plain"][:1]
                    or [k for k in kids if k.get_content_type() == "text/html"][:1] or kids)
        return [text for kid in kids for text in bodies(kid)]
    kind = part.get_content_type()
    if kind not in ("text/plain", "text/html") or part.get_content_disposition() == "attachment":
        return []
    text = decode(part.get_payload(decode=True) or b"", part.get_content_charset())
    return [html_text(text) if kind == "text/html" else text]


def message_parts(raw: bytes) -> tuple[str, str]:
    """(subject, body) of one raw message, not yet cleaned."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return subject(msg), "\n".join(bodies(msg))
