"""What reading the notes of one review may cost, all documents together.

Each document is bounded on its own (plugin.fhir.documents: 2 MiB an attachment; plugin.fhir
.pdf_text: a PDF's pages and content), and so is the phrase check (plugin.narrative); but one
Bundle can hold many documents, and a threaded server gives no request a time limit of its own
(gunicorn's --timeout replaces a worker whose master it stops hearing from, not one slow request
in a gthread worker). So the documents of one index (one review's Bundle; in the audit, one
patient's resources) share a budget: decoded attachment bytes, PDF content bytes, and a time
guard, the last guard only, checked before each document and between a PDF's operators. A
document past the budget is a reading note, never read.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = [
    "MAX_READING_SECONDS",
    "MAX_REVIEW_ATTACHMENT_BYTES",
    "MAX_REVIEW_PDF_BYTES",
    "ReadingBudget",
]

MAX_REVIEW_ATTACHMENT_BYTES = 16 * 1024 * 1024  # eight notes at the 2 MiB limit
MAX_REVIEW_PDF_BYTES = 2 * 1024 * 1024  # decoded PDF content, read at about 1 MiB a second
MAX_READING_SECONDS = 20.0  # the last guard: the byte budgets bound the work first


class ReadingBudget:
    """The budget of one index's documents; the clock starts at the first document read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.attachment_bytes = MAX_REVIEW_ATTACHMENT_BYTES
        self.pdf_bytes = MAX_REVIEW_PDF_BYTES
        self.clock = clock
        self.deadline: float | None = None

    def start(self) -> None:
        if self.deadline is None:
            self.deadline = self.clock() + MAX_READING_SECONDS

    def overdue(self) -> bool:
        return self.deadline is not None and self.clock() > self.deadline

    def spend_attachment(self, size: int) -> str:
        """Charge an attachment's decoded bytes; why it may not be read ("" when it may)."""
        self.start()
        if self.overdue():
            return f"past {MAX_READING_SECONDS:.0f} s, the longest one review's notes are read"
        if size > self.attachment_bytes:
            mib = MAX_REVIEW_ATTACHMENT_BYTES // (1024 * 1024)
            return f"past {mib} MiB of attachments, the most one review reads"
        self.attachment_bytes -= size
        return ""
