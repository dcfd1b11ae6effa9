"""The readable text of an HTML or XHTML note, by libxml2's C parser (lxml).

The note's markup comes from the EHR and is read as hostile: Python's ``html.parser`` took
minutes on crafted markup ("<p " 50,000 times: 150 KB, quadratic) and raised an uncaught
AssertionError on ``<![ x``. libxml2's HTML parser (lxml.etree.HTMLParser) recovers from any
markup in time linear in its length; it is driven here as a stream of events (no tree is built,
so nesting depth costs nothing), and whatever it still raises becomes ``HtmlUnreadable``. Each
event costs a call into Python, so a document is read up to MAX_HTML_EVENTS of them (a note of
several pages has a few thousand); the rest is left unread and said (``unread``).
"""

from __future__ import annotations

import re

from lxml import etree

__all__ = ["MAX_HTML_EVENTS", "HtmlUnreadable", "html_text", "html_to_text"]

MAX_HTML_EVENTS = 100_000  # tags and runs of text read from one document

SKIP = frozenset({"script", "style", "template"})  # content that is not the note's text
BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "div", "dl", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "html", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot",
        "thead", "title", "ul",
    }
)  # fmt: skip
LINE = frozenset({"br", "dd", "dt", "li", "tr"})  # each starts a line of its own
CELL = frozenset({"td", "th"})

_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class HtmlUnreadable(Exception):
    """The parser gave up on the markup (its message names libxml2's reason)."""


class _Enough(Exception):
    """MAX_HTML_EVENTS were read: raised from the target, out of the parser's feed."""


class _Text:
    """The parser's target: collects text outside scripts and styles, a line break for each
    block or line element (tags lower-cased by the parser; XHTML's namespace dropped)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.skipping = 0
        self.events = 0

    def _count(self) -> None:
        self.events += 1
        if self.events > MAX_HTML_EVENTS:
            raise _Enough

    def start(self, tag: object, attrib: object) -> None:
        self._count()
        name = _local(tag)
        if name in SKIP:
            self.skipping += 1
        elif name in BLOCK or name in LINE:
            self.parts.append("\n")
        elif name in CELL:
            self.parts.append(" ")

    def end(self, tag: object) -> None:
        self._count()
        name = _local(tag)
        if name in SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif name in BLOCK:
            self.parts.append("\n")

    def data(self, data: str) -> None:
        self._count()
        if not self.skipping:
            self.parts.append(data)

    def close(self) -> str:
        return "".join(self.parts)


def _local(tag: object) -> str:
    name = tag if isinstance(tag, str) else ""
    return name.rpartition("}")[2].lower()


def html_text(markup: str) -> tuple[str, str]:
    """(the readable text of an HTML or XHTML document, what was left unread: "" when all was
    read). Tags, comments, scripts and styles dropped, entities unescaped, paragraphs and line
    breaks kept as newlines."""
    target = _Text()
    parser = etree.HTMLParser(target=target, no_network=True, remove_comments=True)
    unread = ""
    try:
        parser.feed(markup)
        found = parser.close()
    except _Enough:
        found = target.close()
        unread = f"its markup past {MAX_HTML_EVENTS:,} tags and runs of text is not read"
    except (etree.LxmlError, ValueError) as exc:  # recover=True leaves few: say which
        raise HtmlUnreadable(type(exc).__name__) from None
    if not isinstance(found, str):  # nothing fed: no document at all
        found = target.close()
    lines = [_SPACES.sub(" ", line).strip() for line in found.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip(), unread


def html_to_text(markup: str) -> str:
    """The readable text of an HTML or XHTML document (``html_text``), what a cap left unread
    dropped without a word: for callers that keep no reading notes."""
    return html_text(markup)[0]
