"""Hostile HTML and PDF notes (second security review, MEDIUM): read in work bounded per
document and per review, a note over a cap is a reading note, and nothing raises."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from plugin.cli import main
from plugin.fhir import pdf_text as pdf_module
from plugin.fhir.documents import MAX_RTF_BYTES, document_text, html_to_text
from plugin.fhir.html_text import MAX_HTML_EVENTS
from plugin.fhir.index import Index
from plugin.fhir.pdf_text import MAX_PDF_CONTENT_BYTES, MAX_PDF_PAGES, pdf_text
from plugin.fhir.reading_budget import MAX_REVIEW_ATTACHMENT_BYTES, ReadingBudget
from plugin.synthetic.visit import clean_visit
from tests.fhir.pdfs import pdf, text_ops
from tests.fhir.test_documents import b64, doc
from tests.work import CountedText, Work


def read_all(*documents: dict, others: tuple[dict, ...] = ()) -> tuple[list[str], list[str]]:
    """The texts of several DocumentReferences read from one index (one review), and its notes."""
    index = Index([(r, "") for r in (*documents, *others)])
    texts = [document_text(index, d, f"DocumentReference/{d['id']}") for d in documents]
    return texts, index.notes


def pdf_doc(raw: bytes, rid: str = "doc-9") -> dict:
    return doc({"contentType": "application/pdf", "data": b64(raw)}, rid=rid)


# --- HTML ------------------------------------------------------------------------------------


def test_a_broken_marked_section_is_read_not_raised():
    """html.parser raised an uncaught AssertionError on "<![ x": 500 on the page and CDS."""
    text, notes = read_all(doc({"contentType": "text/html", "data": b64(b"<p>CGA</p><![ x")}))
    assert text == ["CGA"] and notes == []


def test_a_broken_marked_section_in_a_note_never_ends_the_cli_in_a_traceback(tmp_path):
    b = clean_visit()
    for entry in b.entries:
        if entry["resource"]["resourceType"] == "DocumentReference":
            entry["resource"]["content"] = [
                {"attachment": {"contentType": "text/html", "data": b64(b"<p>Note</p><![ x")}}
            ]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(b.bundle()))
    result = CliRunner().invoke(main, ["review", str(path), "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["encounter"] == "Encounter/enc-1"


def test_a_broken_marked_section_in_a_cds_prefetch_is_reviewed():
    from flask import Flask

    from plugin.web.cds_hooks import CdsClient, create_cds_blueprint
    from tests.web.test_cds_hooks import APP, KEY, SERVICE, request_body, token

    app = Flask(__name__)
    ehr = CdsClient("https://ehr.test/cds-client", {"keys": [KEY.as_dict(private=False)]})
    app.register_blueprint(create_cds_blueprint([ehr], APP))
    body = request_body("doc_weak_narrative.json")
    for entry in body["prefetch"]["everything"]["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            entry["resource"]["content"] = [
                {"attachment": {"contentType": "text/html", "data": b64(b"<p>x</p><![ x")}}
            ]
    resp = app.test_client().post(
        f"/cds-services/{SERVICE}", json=body, headers={"Authorization": f"Bearer {token()}"}
    )
    assert resp.status_code == 200 and resp.get_json()["cards"]


def _html_work(markup: str) -> int:
    with Work() as work:
        html_to_text(CountedText(markup, work))
    return work.total


@pytest.mark.parametrize("unit", ["<p ", "<!--", "<a b='", "</", "<!", "<?"])
def test_crafted_markup_costs_work_linear_in_its_length(unit):
    """Four times the markup is at most about four times the work (html.parser: 14-15 times;
    "<p " 50,000 times, 150 KB, took minutes). Work is counted, never timed: the lines run and
    the characters the parser's searches and slices cover."""
    _html_work(unit * 10)
    small, large = _html_work(unit * 500), _html_work(unit * 2000)
    assert large <= 4.5 * small, (small, large)


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<div>" * 90_000 + "deep", "deep"),  # no tree is built: nesting costs nothing
        ("<p>a\x00b</p>", "a\ufffdb"),
        ("<script>var x = '<p>no</p>'", ""),
        ("<?xml version='1.0' encoding='utf-8'?><p>x</p>", "x"),
        ("<![CDATA[hidden]]>shown", "shown"),
        ("<p>one<p>two", "one\n\ntwo"),
        ("&" + "a" * 10_000, "&" + "a" * 10_000),
    ],
    ids=["deep", "nul", "unclosed script", "xml declaration", "cdata", "implied end", "entity"],
)
def test_hostile_markup_gives_its_text(markup, text):
    assert html_to_text(markup) == text


def test_markup_past_the_event_cap_is_a_reading_note():
    """Each tag and run of text costs a call into Python: a document is read up to
    MAX_HTML_EVENTS of them, and the rest is said."""
    markup = b"<p>tandem stance</p>" * (MAX_HTML_EVENTS // 3) + b"<p>unread</p>" * 10
    (text,), notes = read_all(doc({"contentType": "text/html", "data": b64(markup)}))
    assert text.startswith("tandem stance") and "unread" not in text
    assert notes == [
        "DocumentReference/doc-9: its attachment data is HTML: its markup past 100,000 tags "
        "and runs of text is not read"
    ]


# --- RTF -------------------------------------------------------------------------------------


def test_rtf_past_its_cap_is_a_reading_note():
    """striprtf reads a character at a time in Python: RTF is read up to MAX_RTF_BYTES."""
    body = b"Tactile cues for weight shift. " * (MAX_RTF_BYTES // 31)
    rtf = b"{\\rtf1\\ansi " + body + b"\\par UNREAD}"
    (text,), notes = read_all(doc({"contentType": "text/rtf", "data": b64(rtf)}))
    assert text.startswith("Tactile cues") and "UNREAD" not in text
    assert notes == [
        "DocumentReference/doc-9: its attachment data is RTF: its RTF past 512 KiB is not read"
    ]


# --- PDF -------------------------------------------------------------------------------------


def test_an_ordinary_pdf_of_several_pages_is_read_whole():
    raw = pdf([text_ops(f"page {n} tandem stance") for n in range(12)], list(range(12)))
    (text,), notes = read_all(pdf_doc(raw))
    assert notes == [] and all(f"page {n} tandem stance" in text for n in range(12))


def test_pages_that_share_one_stream_are_read_up_to_the_content_cap():
    """One compressed stream drawn by 60 pages: 8 KB on the wire, 60 parses of 280 KB (it took
    29 s). Pages are read until the document's decoded content passes its cap; the pages read
    are kept, the rest is a reading note."""
    stream = text_ops("balance", 20_000)
    raw = pdf([stream], [0] * 60)
    assert len(raw) < 16_000
    (text,), notes = read_all(pdf_doc(raw))
    pages_read = MAX_PDF_CONTENT_BYTES // len(stream) - 1  # the first read also decodes it
    assert text.count("balance") == 20_000 * pages_read
    assert notes == [
        f"DocumentReference/doc-9: its attachment data is a PDF: pages {pages_read + 1}-60 of "
        "60 are not read (past 1,024 KiB of content, the most read of one PDF)"
    ]


def test_pages_past_the_page_cap_are_a_reading_note():
    count = MAX_PDF_PAGES + 5
    raw = pdf([text_ops(f"page{n}") for n in range(count)], list(range(count)))
    (text,), notes = read_all(pdf_doc(raw))
    assert f"page{MAX_PDF_PAGES - 1}" in text and f"page{MAX_PDF_PAGES}" not in text
    assert notes == [
        f"DocumentReference/doc-9: its attachment data is a PDF: pages 51-{count} of {count} "
        "are not read (at most 50 pages are read)"
    ]


def test_a_form_drawn_many_times_is_charged_each_time():
    """A 100 KB form drawn 1,000 times on one page: each drawing is charged as content read."""
    form = text_ops("perturbation", 7_000)
    page = b"q " + b"/X0 Do " * 1_000 + b"Q"
    (text,), notes = read_all(pdf_doc(pdf([page, text_ops("first page")], [1, 0], [form])))
    assert text.strip() == "first page"
    assert len(notes) == 1 and "page 2 of 2 is not read (past 1,024 KiB" in notes[0]


def test_the_pdfs_of_one_review_share_a_budget():
    """Each PDF within its own cap, more of them than one review reads: the later ones are a
    reading note saying why."""
    stream = text_ops("balance", 30_000)  # 420 KB: two reads of it per document
    docs = [pdf_doc(pdf([stream], [0]), rid=f"doc-{n}") for n in range(4)]
    texts, notes = read_all(*docs)
    assert [bool(t) for t in texts] == [True, True, False, False]
    assert all("the most read of one review's PDFs" in n for n in notes)
    assert [n.split(":")[0] for n in notes] == [
        "DocumentReference/doc-2",
        "DocumentReference/doc-3",
    ]


def _pdf_work(raw: bytes) -> int:
    with Work() as work:
        pdf_text(raw)
    return work.lines


def test_reading_work_stops_growing_with_the_pages_that_share_a_stream(monkeypatch):
    """Work counted as the Python lines pypdf and the reader run (never timed): past the cap,
    more pages sharing the stream cost only their page objects (8 to 32 pages: 1.07 times the
    work; without the caps 4 times, 1.3 million lines)."""
    monkeypatch.setattr(pdf_module, "MAX_PDF_CONTENT_BYTES", 32 * 1024)
    stream = text_ops("balance", 1_000)  # 14 KB: the cap is passed on the second page
    _pdf_work(pdf([stream], [0]))
    few, many = _pdf_work(pdf([stream], [0] * 8)), _pdf_work(pdf([stream], [0] * 32))
    assert many <= 1.1 * few, (few, many)


def test_the_time_guard_stops_what_the_caps_did_not_foresee():
    """The last guard only: a clock that has run past the deadline stops the reading between
    operators, keeping the pages read."""
    now = [0.0]
    budget = ReadingBudget(clock=lambda: now[0])
    raw = pdf([text_ops("first"), text_ops("later", 300)], [0, 1])
    text, unread = pdf_text(raw, budget)  # a first reading within time
    assert "later" in text and unread == ""
    now[0] = 1_000.0
    text, unread = pdf_text(raw, budget)
    assert text.strip() == "first"
    assert unread == "page 2 of 2 is not read (past 20 s, the longest one review's notes are read)"


# --- all the documents of one review ----------------------------------------------------------


def test_the_documents_of_one_review_share_a_byte_budget():
    """Each attachment within its 2 MiB, more of them than a review reads: the ones past the
    budget are not read (a reading note each), the ones before are."""
    size = 2 * 1024 * 1024 - 1
    count = MAX_REVIEW_ATTACHMENT_BYTES // size + 2
    docs = [
        doc({"contentType": "text/plain", "data": b64(b"cga " * (size // 4))}, rid=f"d{n}")
        for n in range(count)
    ]
    texts, notes = read_all(*docs)
    read = MAX_REVIEW_ATTACHMENT_BYTES // (size // 4 * 4)
    assert [bool(t) for t in texts] == [True] * read + [False] * (count - read)
    assert notes == [
        f"DocumentReference/d{n}: its attachment data is not read (past 16 MiB of attachments, "
        "the most one review reads)"
        for n in range(read, count)
    ]


def test_documents_are_not_read_past_the_reviews_time_guard():
    now = [0.0]
    index = Index([])
    index.memo["reading budget"] = ReadingBudget(clock=lambda: now[0])
    first = doc({"contentType": "text/plain", "data": b64(b"tandem stance")}, rid="d1")
    later = doc({"contentType": "text/plain", "data": b64(b"perturbation")}, rid="d2")
    assert document_text(index, first, "DocumentReference/d1") == "tandem stance"
    now[0] = 1_000.0
    assert document_text(index, later, "DocumentReference/d2") == ""
    assert index.notes == [
        "DocumentReference/d2: its attachment data is not read (past 20 s, the longest one "
        "review's notes are read)"
    ]
