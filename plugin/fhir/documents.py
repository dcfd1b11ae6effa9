"""The visit note's text from a DocumentReference's attachments (contract.md section 2,
"what the therapist wrote").

An attachment carries its bytes embedded (``data``, base64) or at ``url``. Epic and Oracle Health
serve note text as a ``Binary`` (``url`` = ``Binary/ID`` or the same as an absolute URL); the
Binary is looked up in the index by that reference or by an entry's ``fullUrl``. The bytes are
turned into plain text by their media type: plain text as it is, HTML and XHTML without tags,
scripts and styles (libxml2's parser, plugin.fhir.html_text), RTF with ``striprtf``, a PDF's text
layer with ``pypdf`` within caps on pages and work (plugin.fhir.pdf_text). Anything that cannot
be read (an unknown media type, a missing Binary, bad base64, more than MAX_DOCUMENT_BYTES) is a
reading note that names the DocumentReference and the problem, never an exception; so is the
part of a PDF left unread past its caps (the pages before are read), and a document past what
the documents of one review may cost together (plugin.fhir.reading_budget).

A DocumentReference's several ``content`` entries are the same document in different formats
(FHIR R4 DocumentReference.content): the most readable format that gives text is used, so the
HTML and RTF copies Epic sends are not read twice.
"""

from __future__ import annotations

import binascii
import codecs

from plugin.fhir.html_text import HtmlUnreadable, html_text, html_to_text
from plugin.fhir.index import Index, text
from plugin.fhir.pdf_text import PdfUnreadable, pdf_text
from plugin.fhir.reading_budget import ReadingBudget

# A visit note of a few pages is tens of kilobytes; a larger attachment is a scan or an export,
# not a note to search for minutes and interventions.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
# striprtf reads RTF one character at a time in Python (about a second for 700 KB here): an RTF
# document is read up to this size, the rest said in a reading note. A note's RTF is tens of KB.
MAX_RTF_BYTES = 512 * 1024

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
    """Why an attachment gave no text, or not all of it (becomes a reading note, never leaves
    this module); ``text`` is what was read before the problem ("" when nothing was)."""

    def __init__(self, why: str, text: str = "", said_whole: bool = False) -> None:
        super().__init__(why)
        self.text = text
        self.said_whole = said_whole  # the message says what was not read


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
            index.note(_said(key, why))
            found = why.text
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
            index.note(_said(key, why))
            found = why.text
        if found.strip():
            parts.append(found)
            chosen = kind
    return parts[0] if len(parts) == 1 else "\n".join(parts)


def _said(key: str, why: Unreadable) -> str:
    """The reading note for an attachment not read, or read in part."""
    if why.said_whole:
        return f"{key}: {why}"
    return f"{key}: {why}; its text is not read"


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
    raw = _base64(data, where)
    budget = reading_budget(index)
    spent = budget.spend_attachment(len(raw))
    if spent:
        raise Unreadable(f"{where} is not read ({spent})", said_whole=True)
    return _decode(raw, mime, charset, where, budget)


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


def reading_budget(index: Index) -> ReadingBudget:
    """What all the documents of one index may cost together (one review's Bundle, one audited
    patient): plugin.fhir.reading_budget."""
    found = index.memo.get("reading budget")
    if found is None:
        found = index.memo["reading budget"] = ReadingBudget()
    return found


def _decode(
    raw: bytes, mime: str, charset: str, where: str, budget: ReadingBudget | None = None
) -> str:
    """``decode_text`` with the content type already read as ``mime`` and ``charset``."""
    kind = KINDS.get(mime or "text/plain")
    if kind is None:
        raise Unreadable(f"{where} is {mime}, a format that is not read")
    if kind == PDF:
        return _pdf_text(raw, where, budget)
    if charset != "utf-8":  # utf-8 is always known
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
    if kind == RTF:
        return _rtf_text(raw, charset, where)
    decoded = raw.decode(charset, errors="replace")
    if kind != HTML:
        return decoded
    try:
        found, unread = html_text(decoded)
    except HtmlUnreadable as why:
        raise Unreadable(f"{where} is HTML that could not be read ({why})") from None
    if unread:  # what was read is kept; the rest is said
        raise Unreadable(f"{where} is HTML: {unread}", found, said_whole=True)
    return found


def _rtf_text(raw: bytes, charset: str, where: str) -> str:
    from striprtf.striprtf import rtf_to_text  # imported when needed: most notes are not RTF

    # RTF is 7-bit text that names its own code page; latin-1 keeps any stray byte as it is.
    source = raw.decode("latin-1")
    if not source.lstrip().startswith("{\\rtf"):
        raise Unreadable(f"{where} is labelled RTF but is not an RTF document")
    encoding = charset if charset != "utf-8" else "cp1252"
    unread = ""
    if len(source) > MAX_RTF_BYTES:  # cut between words, never inside a control word
        cut = max(source.rfind(" ", 0, MAX_RTF_BYTES), source.rfind("\n", 0, MAX_RTF_BYTES))
        source = source[: cut if cut > 0 else MAX_RTF_BYTES]
        unread = f"its RTF past {MAX_RTF_BYTES // 1024:,} KiB is not read"
    try:
        found = rtf_to_text(source, encoding=encoding, errors="replace")
    except Exception as exc:  # a malformed document must not stop the review
        raise Unreadable(f"{where} is RTF that could not be read ({type(exc).__name__})") from None
    if unread:
        raise Unreadable(f"{where} is RTF: {unread}", found, said_whole=True)
    return found


def _pdf_text(raw: bytes, where: str, budget: ReadingBudget | None) -> str:
    try:
        found, unread = pdf_text(raw, budget)
    except PdfUnreadable as why:
        raise Unreadable(f"{where} is {why}") from None
    if unread:  # the pages read are kept; the rest is said
        raise Unreadable(f"{where} is a PDF: {unread}", found, said_whole=True)
    return found
