"""The worst notes we could craft are reviewed within a fixed amount of work (second security
review, LOW: gunicorn's --timeout does not bound a request in a threaded worker, and a CPU-bound
review ran 200 s under --timeout 30).

Each crafted note is the visit note and the 97112 Procedure's own note of a real fixture, at the
2 MiB attachment limit and at a fifth of it: past the caps (plugin.narrative, plugin.fhir
.pdf_text, plugin.fhir.reading_budget) the larger note costs no more, and no review passes
WORK_BOUND. Work is the Python lines run (never time); the C steps left (base64, libxml2, the
regular expressions) are single passes over at most the 2 MiB of each attachment.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from plugin.fhir import documents, reading_budget
from plugin.fhir import pdf_text as pdf_module
from plugin.policy import load_policy
from plugin.review import review_bundle
from tests.fhir.pdfs import pdf, text_ops
from tests.work import Work

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "doc_weak_narrative.json"
LIMIT = 2 * 1024 * 1024 - 1024  # just under the 2 MiB a note may have
WORK_BOUND = 2_500_000  # Python lines for one review; the worst note measured about 2,000,000

# Every phrase list matched, each match discounted (a plan), so every list is read to the end.
PLANNED = (
    "will cues will cga will tolerated will impaired balance will strength will transfers "
    "will independent will coordination "
)
SHAPES = {
    "plans": PLANNED,
    "plans, one clause each": PLANNED.replace(" will", ",will"),
    "negations": PLANNED.replace("will ", "no "),
    "one clause of hits": "balance " * 8,
    "spaces": "balance" + " " * 200,
    "one long word": "x" * 1_000,
}


def _with_note(raw: bytes, content_type: str) -> dict:
    """The fixture with ``raw`` as its visit note and as its 97112 Procedure's own note."""
    bundle = json.loads(FIXTURE.read_text())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "DocumentReference":
            data = base64.b64encode(raw).decode()
            resource["content"] = [{"attachment": {"contentType": content_type, "data": data}}]
        if resource["resourceType"] == "Procedure":
            resource["note"] = [{"text": raw[:LIMIT].decode("latin-1")}]
    return bundle


def _work(bundle: dict) -> tuple[int, list[str]]:
    policy = load_policy()
    review_bundle(copy.deepcopy(bundle), policy=policy)  # caches and patterns warmed
    with Work() as work:
        report = review_bundle(bundle, policy=policy)
    return work.lines, list(report.visit.notes)


def _fill(unit: bytes, size: int) -> bytes:
    return unit * (size // len(unit))


def _html(unit: str) -> bytes:
    """Each clause its own paragraph: the most tags (events) for the words."""
    return "".join(f"<p>{clause}</p>" for clause in unit.split(",")).encode()


CASES = [(shape, "text/plain", unit.encode()) for shape, unit in SHAPES.items()] + [
    (shape, "text/html", _html(unit)) for shape, unit in SHAPES.items()
]


@pytest.mark.parametrize(
    ("content_type", "unit"),
    [(c, u) for _, c, u in CASES],
    ids=[f"{c}: {shape}" for shape, c, _ in CASES],
)
def test_the_worst_notes_at_the_size_limit_are_reviewed_within_a_fixed_work_bound(
    content_type, unit
):
    work, notes = _work(_with_note(_fill(unit, LIMIT), content_type))
    assert work <= WORK_BOUND, work
    assert any("(a note is read up to 20,000 words" in n for n in notes)


def test_past_the_caps_a_longer_note_costs_no_more():
    unit = SHAPES["plans, one clause each"].encode()
    small, _ = _work(_with_note(_fill(unit, LIMIT // 5), "text/plain"))
    large, _ = _work(_with_note(_fill(unit, LIMIT), "text/plain"))
    assert large <= 1.01 * small, (small, large)


def test_the_worst_rtf_note_is_reviewed_within_a_fixed_work_bound(monkeypatch):
    """The RTF cap made small (tracing striprtf's every character is slow): past it, a longer
    note costs no more."""
    monkeypatch.setattr(documents, "MAX_RTF_BYTES", 16 * 1024)
    unit = SHAPES["plans, one clause each"].encode()
    head = b"{\\rtf1\\ansi "
    small, _ = _work(_with_note(head + _fill(unit, LIMIT // 5), "text/rtf"))
    large, notes = _work(_with_note(head + _fill(unit, LIMIT), "text/rtf"))
    assert large <= 1.1 * small and large <= WORK_BOUND, (small, large)
    assert any("is RTF: its RTF past 16 KiB is not read" in n for n in notes)


def test_the_worst_pdf_note_is_reviewed_within_a_fixed_work_bound(monkeypatch):
    """The PDF caps made small (tracing pypdf's every line is slow): 60 pages sharing one
    stream, its content ten times larger, cost no more."""
    monkeypatch.setattr(pdf_module, "MAX_PDF_CONTENT_BYTES", 16 * 1024)
    monkeypatch.setattr(reading_budget, "MAX_REVIEW_PDF_BYTES", 32 * 1024)
    small, _ = _work(_with_note(pdf([text_ops("will balance", 400)], [0] * 60), "application/pdf"))
    large, notes = _work(
        _with_note(pdf([text_ops("will balance", 4_000)], [0] * 60), "application/pdf")
    )
    assert large <= 1.1 * small and large <= WORK_BOUND, (small, large)
    assert any("is a PDF: pages" in n and "of 60 are not read" in n for n in notes)
