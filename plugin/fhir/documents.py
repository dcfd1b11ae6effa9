"""The visit note's text from a DocumentReference's attachments (contract.md section 2,
"what the therapist wrote").

An attachment carries its bytes embedded (``data``, base64) or at ``url``. Epic and Oracle Health
serve note text as a ``Binary`` (``url`` = ``Binary/ID`` or the same as an absolute URL); the
Binary is looked up in the index by that reference or by an entry's ``fullUrl``. The bytes are
turned into plain text by their media type: plain text as it is, HTML and XHTML without tags,
scripts and styles, RTF with ``striprtf``, a PDF's text layer with ``pypdf``. Anything that cannot
be read (an unknown media type, a missing Binary, bad base64, more than MAX_DOCUMENT_BYTES) is a
reading note that names the DocumentReference and the problem, never an exception.

A DocumentReference's several ``content`` entries are the same document in different formats
(FHIR R4 DocumentReference.content): the most readable format that gives text is used, so the
HTML and RTF copies Epic sends are not read twice.
"""

from __future__ import annotations

import binascii
import codecs
import io
import re
import warnings
from html.parser import HTMLParser

from plugin.fhir.index import Index, text

# A visit note of a few pages is tens of kilobytes; a larger attachment is a scan or an export,
# not a note to search for minutes and interventions.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024

PLAIN = "plain"
HTML = "html"
RTF = "rtf"
PDF = "pdf"
KINDS = {
    "text/plain": PLAIN,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    "text/rtf": RTF,
    "application/rtf": RTF,
    "application/pdf": PDF,
}
PREFERENCE = (PLAIN, HTML, RTF, PDF)  # the order alternative formats of one note are tried in

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "binary_key",
    "document_text",
    "html_to_text",
    "media_type",
    "preferred_attachments",
]


class Unreadable(Exception):
    """Why an attachment gave no text (becomes a reading note, never leaves this module)."""


def media_type(content_type: object) -> tuple[str, str]:
    """(lower-case media type, charset) of a MIME content type; the charset defaults to utf-8."""
    if not isinstance(content_type, str):
        return "", "utf-8"
    if ";" not in content_type:  # the common form, no parameters
        return content_type.strip().lower(), "utf-8"
    main, *params = content_type.split(";")
    charset = "utf-8"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    return main.strip().lower(), charset


def _kind(content_type: object) -> str | None:
    mime, _ = media_type(content_type)
    return KINDS.get(mime or "text/plain")


def binary_key(index: Index, attachment: dict) -> str | None:
    """The ``Binary/ID`` key an attachment's url points at (relative, absolute or a fullUrl)."""
    url = text(attachment.get("url")).strip()
    if not url:
        return None
    key = index.key(url)
    return key if key and key.startswith("Binary/") else None


def preferred_attachments(document: dict) -> list[dict]:
    """The document's attachments, most readable format first (the original order otherwise)."""
    contents = document.get("content")
    if not isinstance(contents, list):
        return []
    attachments = []
    for content in contents:
        attachment = content.get("attachment") if isinstance(content, dict) else None
        if isinstance(attachment, dict) and attachment:
            attachments.append(attachment)
    if len(attachments) < 2:
        return attachments

    def rank(attachment: dict) -> int:
        kind = _kind(attachment.get("contentType"))
        return PREFERENCE.index(kind) if kind in PREFERENCE else len(PREFERENCE)

    return sorted(attachments, key=rank)


def document_text(index: Index, document: dict, key: str) -> str:
    """The plain text of a DocumentReference; every unreadable attachment tried is noted."""
    contents = document.get("content")
    if isinstance(contents, list) and len(contents) == 1:
        # The common case, one attachment: nothing to rank, no other format to fall back on.
        content = contents[0]
        attachment = content.get("attachment") if isinstance(content, dict) else None
        if not isinstance(attachment, dict) or not attachment:
            return ""
        mime, charset = media_type(attachment.get("contentType"))
        try:
            found = _attachment_text(index, attachment, mime, charset)
        except Unreadable as why:
            index.note(f"{key}: {why}; its text is not read")
            return ""
        return found if found.strip() else ""
    chosen: str | None = None
    parts: list[str] = []
    for attachment in preferred_attachments(document):
        mime, charset = media_type(attachment.get("contentType"))
        kind = KINDS.get(mime or "text/plain")
        if chosen is not None and kind != chosen:
            break  # a readable format was found: the other formats are copies of it
        try:
            found = _attachment_text(index, attachment, mime, charset)
        except Unreadable as why:
            index.note(f"{key}: {why}; its text is not read")
            continue
        if found.strip():
            parts.append(found)
            chosen = kind
    return parts[0] if len(parts) == 1 else "\n".join(parts)


def _attachment_text(index: Index, attachment: dict, mime: str, charset: str) -> str:
    """The text of one attachment whose own contentType reads as ``mime`` and ``charset``
    (a Binary's contentType wins over them)."""
    data = attachment.get("data")
    if isinstance(data, str) and data:
        where = "its attachment data"
    else:
        url = text(attachment.get("url")).strip()
        if not url:
            raise Unreadable("an attachment has neither data nor url")
        ref = binary_key(index, attachment)
        binary = index.by_key.get(ref) if ref else None
        if ref is None:
            raise Unreadable("an attachment url does not point at a Binary")
        if binary is None:
            raise Unreadable(f"the attachment refers to {ref}, which is not in the Bundle")
        if text(binary.get("resourceType")) != "Binary":
            raise Unreadable(f"the attachment refers to {ref}, which is not a Binary")
        where = ref
        data = binary.get("data")
        content_type = binary.get("contentType")
        if content_type:
            mime, charset = media_type(content_type)
        if not isinstance(data, str) or not data:
            raise Unreadable(f"{ref} has no data")
    return _decode(_base64(data, where), mime, charset, where)


def _base64(data: str, where: str) -> bytes:
    compact = "".join(data.split())  # base64Binary may be wrapped over lines
    if len(compact) // 4 * 3 > MAX_DOCUMENT_BYTES + 3:
        raise Unreadable(
            f"{where} holds about {len(compact) // 4 * 3 // 1024} KiB, above the "
            f"{MAX_DOCUMENT_BYTES // 1024} KiB limit for a note (MAX_DOCUMENT_BYTES)"
        )
    try:
        raw = binascii.a2b_base64(compact, strict_mode=True)  # base64.b64decode(validate=True)
    except (binascii.Error, ValueError):
        raise Unreadable(f"{where} is not valid base64") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise Unreadable(
            f"{where} holds {len(raw) // 1024} KiB, above the "
            f"{MAX_DOCUMENT_BYTES // 1024} KiB limit for a note (MAX_DOCUMENT_BYTES)"
        )
    return raw


def decode_text(raw: bytes, content_type: object, where: str = "the attachment") -> str:
    """Plain text from the bytes of a document of the given content type (Unreadable if not)."""
    mime, charset = media_type(content_type)
    return _decode(raw, mime, charset, where)


def _decode(raw: bytes, mime: str, charset: str, where: str) -> str:
    """``decode_text`` with the content type already read as ``mime`` and ``charset``."""
    kind = KINDS.get(mime or "text/plain")
    if kind is None:
        raise Unreadable(f"{where} is {mime}, a format that is not read")
    if kind == PDF:
        return _pdf_text(raw, where)
    if charset != "utf-8":  # utf-8 is always known
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
    if kind == RTF:
        return _rtf_text(raw, charset, where)
    decoded = raw.decode(charset, errors="replace")
    return html_to_text(decoded) if kind == HTML else decoded


class _TextOfHtml(HTMLParser):
    SKIP = frozenset({"script", "style", "template"})
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

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK or tag in self.LINE:
            self.parts.append("\n")
        elif tag in self.CELL:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in self.BLOCK or tag in self.LINE:  # <br/>, <p/>; a <script/> opens nothing
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


_SPACES = re.compile(r"[ \t\r\f\v]+")


def html_to_text(markup: str) -> str:
    """The readable text of an HTML or XHTML document: tags, scripts and styles dropped, entities
    unescaped, paragraphs and line breaks kept as newlines."""
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _rtf_text(raw: bytes, charset: str, where: str) -> str:
    from striprtf.striprtf import rtf_to_text  # imported when needed: most notes are not RTF

    # RTF is 7-bit text that names its own code page; latin-1 keeps any stray byte as it is.
    source = raw.decode("latin-1")
    if not source.lstrip().startswith("{\\rtf"):
        raise Unreadable(f"{where} is labelled RTF but is not an RTF document")
    encoding = charset if charset != "utf-8" else "cp1252"
    try:
        return rtf_to_text(source, encoding=encoding, errors="replace")
    except Exception as exc:  # a malformed document must not stop the review
        raise Unreadable(f"{where} is RTF that could not be read ({type(exc).__name__})") from None


def _pdf_text(raw: bytes, where: str) -> str:
    from pypdf import PdfReader  # imported when needed: it is slow to import and rarely used

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted and not reader.decrypt(""):
                raise Unreadable(f"{where} is an encrypted PDF")
            pages = [page.extract_text() or "" for page in reader.pages]
    except Unreadable:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        why = type(exc).__name__
        raise Unreadable(f"{where} is a PDF that could not be read ({why})") from None
    found = "\n".join(p for p in pages if p.strip())
    if not found.strip():
        raise Unreadable(f"{where} is a PDF with no text layer (a scan?)")
    return found
