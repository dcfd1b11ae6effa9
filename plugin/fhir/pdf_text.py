"""The text layer of a PDF note, read by pypdf within a fixed amount of work.

A PDF is small on the wire and can still cost without bound to read: one compressed content
stream shared by every page is decompressed once but parsed again for each page (the second
security review: a 4 KB PDF took 8.7 s; 10 KB, 60 pages, 29 s here), and a form XObject can be
drawn many times a page. So the work is counted while it is done, against caps:

- at most MAX_PDF_PAGES pages of a document are read;
- decoded content bytes are charged each time something is read (a page's content streams;
  every stream the first time it is decoded, forms included; for every form drawn, ``Do``, the
  largest form the page can reach), at most MAX_PDF_CONTENT_BYTES per document and
  MAX_REVIEW_PDF_BYTES for all the PDFs of one review (plugin.fhir.reading_budget): pypdf reads
  about a megabyte of content a second here;
- pypdf's own limits (its ``Configuration``) held at the document's size, for every
  decompression filter and for the tokens of one content stream; forms drawn per page capped;
- last, the review's time guard (MAX_READING_SECONDS), checked between operators, for anything
  not foreseen.

Past a cap the pages already read are kept, and the caller is told what was left unread (a
reading note). No cap stops a note of a few dozen ordinary pages.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from plugin.fhir.reading_budget import MAX_READING_SECONDS, MAX_REVIEW_PDF_BYTES, ReadingBudget

__all__ = ["MAX_PDF_CONTENT_BYTES", "MAX_PDF_PAGES", "PdfUnreadable", "pdf_text"]

MAX_PDF_PAGES = 50  # a visit note is a page or a few; a progress report a dozen
MAX_PDF_PAGE_OBJECTS = 1_000  # a PDF with more pages than this is not read at all
MAX_PDF_CONTENT_BYTES = 1024 * 1024  # decoded content read per document, repeats counted
MAX_PDF_FORMS = 20  # form XObjects drawn per page (pypdf's default is 5,000)
MAX_FORMS_LOOKED_AT = 100  # form XObjects a page's resources may reach

_LIMITS = {
    "zlib_maximum_output_length": MAX_PDF_CONTENT_BYTES,
    "lzw_maximum_output_length": MAX_PDF_CONTENT_BYTES,
    "run_length_maximum_output_length": MAX_PDF_CONTENT_BYTES,
    "brotli_maximum_output_length": MAX_PDF_CONTENT_BYTES,
    "array_based_stream_maximum_output_length": MAX_PDF_CONTENT_BYTES,
    "stream_decoding_work_maximum_length": 4 * MAX_PDF_CONTENT_BYTES,
    "stream_parsing_work_maximum_count": MAX_PDF_CONTENT_BYTES // 4,
    "xform_maximum_invocations_per_extraction": MAX_PDF_FORMS,
    # pypdf reads every page object before the first page (about 1,300 lines of Python each)
    "page_tree_maximum_entries": MAX_PDF_PAGE_OBJECTS,
}


class PdfUnreadable(Exception):
    """The PDF gives no text (damaged, encrypted, or no text layer)."""


class _Spent(BaseException):
    """The document's budget is spent. Raised from inside pypdf (a visitor callback), so it is a
    BaseException: pypdf's ``except Exception`` around a form XObject must not swallow it."""


class _Budget:
    """One document's reading: its own bytes left, and the review's (``ReadingBudget``)."""

    def __init__(self, shared: ReadingBudget) -> None:
        self.left = MAX_PDF_CONTENT_BYTES
        self.shared = shared
        shared.start()
        self.sizes: dict[int, int] = {}  # decoded size of each stream read, by object id
        self.operators = 0

    def charge(self, size: int) -> None:
        self.left -= size
        self.shared.pdf_bytes -= size
        if self.left < 0:
            kib = MAX_PDF_CONTENT_BYTES // 1024
            raise _Spent(f"past {kib:,} KiB of content, the most read of one PDF")
        if self.shared.pdf_bytes < 0:
            kib = MAX_REVIEW_PDF_BYTES // 1024
            raise _Spent(f"past {kib:,} KiB of content, the most read of one review's PDFs")

    def size_of(self, stream: Any) -> int:
        """A stream's decoded size: decoded (by pypdf, which keeps it) and charged once."""
        key = id(stream)
        if key not in self.sizes:
            self.sizes[key] = size = len(stream.get_data())
            self.charge(size)
        return self.sizes[key]

    def tick(self) -> None:
        self.operators += 1
        if self.operators % 256 == 0 and self.shared.overdue():
            seconds = MAX_READING_SECONDS
            raise _Spent(f"past {seconds:.0f} s, the longest one review's notes are read")


def _resolved(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


def _largest_form(page: Any, budget: _Budget) -> int:
    """The decoded size of the largest form XObject the page's resources reach (the charge for
    drawing one, whichever it is)."""
    largest = 0
    seen: set[int] = set()
    pending = [page.get("/Resources")]
    while pending:
        resources = _resolved(pending.pop())
        xobjects = _resolved(resources.get("/XObject")) if isinstance(resources, dict) else None
        if not isinstance(xobjects, dict):
            continue
        for ref in xobjects.values():
            form = _resolved(ref)
            if id(form) in seen or not isinstance(form, dict) or form.get("/Subtype") != "/Form":
                continue
            seen.add(id(form))
            if len(seen) > MAX_FORMS_LOOKED_AT:
                raise _Spent(f"a page reaches more than {MAX_FORMS_LOOKED_AT} forms")
            largest = max(largest, budget.size_of(form))
            pending.append(form.get("/Resources"))
    return largest


def _content_size(page: Any, budget: _Budget) -> int:
    contents = _resolved(page.get("/Contents"))
    streams = contents if isinstance(contents, list) else [contents]
    return sum(budget.size_of(s) for s in map(_resolved, streams) if hasattr(s, "get_data"))


def _page_text(page: Any, budget: _Budget) -> str:
    budget.charge(_content_size(page, budget))  # the page's content is parsed again here
    form = _largest_form(page, budget)

    def visit(operator: bytes, *_: Any) -> None:
        budget.tick()
        if operator == b"Do":
            budget.charge(form)

    return page.extract_text(visitor_operand_before=visit) or ""


def _pages(first: int, count: int) -> str:
    """The pages from index ``first`` on, as unread."""
    if first == count - 1:
        return f"page {count} of {count} is not read"
    return f"pages {first + 1}-{count} of {count} are not read"


def pdf_text(raw: bytes, shared: ReadingBudget | None = None) -> tuple[str, str]:
    """(the text of the pages read, what was left unread: "" when the whole PDF was read).
    PdfUnreadable when the PDF gives no text at all. ``shared``: the review's budget this
    document's work counts against too (a new one when not given)."""
    from pypdf import PdfReader, apply_configuration  # imported when needed: slow to import
    from pypdf.errors import LimitReachedError

    budget = _Budget(shared if shared is not None else ReadingBudget())
    texts: list[str] = []
    unread = ""
    try:
        with warnings.catch_warnings(), apply_configuration(**_LIMITS):
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted and not reader.decrypt(""):
                raise PdfUnreadable("an encrypted PDF")
            pages = reader.pages
            count = len(pages)
            for number, page in enumerate(pages):
                if number == MAX_PDF_PAGES:
                    unread = f"{_pages(number, count)} (at most {MAX_PDF_PAGES} pages are read)"
                    break
                try:
                    texts.append(_page_text(page, budget))
                except _Spent as why:
                    unread = f"{_pages(number, count)} ({why})"
                    break
    except PdfUnreadable:
        raise
    except LimitReachedError as exc:
        if "page tree" in str(exc):
            raise PdfUnreadable(f"a PDF of more than {MAX_PDF_PAGE_OBJECTS:,} pages") from None
        raise PdfUnreadable("a PDF past one of the reader's limits (LimitReachedError)") from None
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise PdfUnreadable(f"a PDF that could not be read ({type(exc).__name__})") from None
    found = "\n".join(t for t in texts if t.strip())
    if not found.strip() and not unread:
        raise PdfUnreadable("a PDF with no text layer (a scan?)")
    return found, unread
