"""The visit note's text from embedded data or a Binary, in each format the EHRs send; anything
unreadable is a reading note that names the DocumentReference, never an exception."""

from __future__ import annotations

import base64

import pytest

from plugin.fhir import build_visit, index_bundle
from plugin.fhir.documents import MAX_DOCUMENT_BYTES, document_text, html_to_text
from plugin.fhir.index import Index
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder, clean_visit
from tests.fhir.pdfs import assemble

BASE = "https://ehr.example.org/fhir"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def tiny_pdf(line: str) -> bytes:
    """A one-page PDF whose text layer is ``line`` (Helvetica), written out by hand."""
    stream = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    return assemble(objects)


def doc(*attachments: dict, rid: str = "doc-9") -> dict:
    return {
        "resourceType": "DocumentReference",
        "id": rid,
        "status": "current",
        "content": [{"attachment": a} for a in attachments],
    }


def binary(rid: str, content_type: str, raw: bytes) -> dict:
    return {"resourceType": "Binary", "id": rid, "contentType": content_type, "data": b64(raw)}


def read(document: dict, *others: dict, full_urls: dict | None = None) -> tuple[str, list[str]]:
    """(text, notes) of one DocumentReference read from an index of it and ``others``."""
    full_urls = full_urls or {}
    index = Index([(r, full_urls.get(r.get("id"), "")) for r in (document, *others)])
    found = document_text(index, document, f"DocumentReference/{document['id']}")
    return found, index.notes


RTF = (
    rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Arial;}}"
    rb"\f0\fs20 Impaired single-leg balance.\par Tactile cues for hip strategy, "
    rb"caf\'e9 level.\par}"
)
HTML = (
    b"<html><head><title>Note</title><style>p { color: red }</style>"
    b"<script>var secret = 'do not read';</script></head><body>"
    b"<p>Impaired&nbsp;single-leg balance &amp; decreased proprioception</p>"
    b"<div>Mod verbal cues<br/>PNF D2 &lt;R&gt;</div><ul><li>one</li><li>two</li></ul>"
    b"</body></html>"
)


def test_embedded_plain_text_with_its_charset():
    text, notes = read(
        doc({"contentType": "text/plain; charset=ISO-8859-1", "data": b64(b"caf\xe9")})
    )
    assert text == "café" and notes == []


def test_plain_text_without_charset_is_utf8_with_bad_bytes_replaced():
    text, notes = read(doc({"contentType": "text/plain", "data": b64(b"balance \xff ok")}))
    assert text == "balance \ufffd ok" and notes == []


def test_html_drops_tags_script_and_style_and_keeps_lines():
    text, notes = read(doc({"contentType": "text/html", "data": b64(HTML)}))
    assert "do not read" not in text and "color" not in text and "<p>" not in text
    assert "Impaired\xa0single-leg balance & decreased proprioception" in text
    assert "Mod verbal cues\nPNF D2 <R>" in text
    assert "one\ntwo" in text and notes == []


def test_xhtml_is_read_like_html():
    xhtml = b'<div xmlns="http://www.w3.org/1999/xhtml"><p>Tandem stance</p><p>CGA</p></div>'
    text, notes = read(doc({"contentType": "application/xhtml+xml", "data": b64(xhtml)}))
    assert text == "Tandem stance\n\nCGA" and notes == []


def test_html_to_text_collapses_spaces_and_blank_runs():
    assert html_to_text("<p>a   b</p>\n\n\n<p> c </p><br><br><br><br>d") == "a b\n\nc\n\nd"


@pytest.mark.parametrize("content_type", ["text/rtf", "application/rtf"])
def test_rtf_via_striprtf(content_type):
    text, notes = read(doc({"contentType": content_type, "data": b64(RTF)}))
    assert "Impaired single-leg balance." in text
    assert "Tactile cues for hip strategy, café level." in text
    assert "\\par" not in text and "fonttbl" not in text and notes == []


def test_rtf_label_on_something_else_is_a_note():
    _, notes = read(doc({"contentType": "text/rtf", "data": b64(b"just words")}))
    assert notes == [
        "DocumentReference/doc-9: its attachment data is labelled RTF but is not an RTF "
        "document; its text is not read"
    ]


def test_pdf_text_layer():
    raw = tiny_pdf("Impaired single-leg balance, perturbation training")
    text, notes = read(doc({"contentType": "application/pdf", "data": b64(raw)}))
    assert "Impaired single-leg balance, perturbation training" in text and notes == []


def test_damaged_pdf_and_pdf_without_text_are_notes():
    _, notes = read(doc({"contentType": "application/pdf", "data": b64(b"%PDF-1.4 garbage")}))
    assert len(notes) == 1 and "DocumentReference/doc-9" in notes[0] and "PDF" in notes[0]
    _, notes = read(doc({"contentType": "application/pdf", "data": b64(tiny_pdf(""))}))
    assert len(notes) == 1 and "no text layer" in notes[0]


def test_binary_by_relative_reference():
    document = doc({"contentType": "text/html", "url": "Binary/b1"})
    text, notes = read(document, binary("b1", "text/html", b"<p>Tactile cues</p>"))
    assert text == "Tactile cues" and notes == []


def test_binary_by_absolute_url_and_history_version():
    document = doc({"contentType": "text/plain", "url": f"{BASE}/Binary/b1/_history/2"})
    text, notes = read(document, binary("b1", "text/plain", b"Verbal cues"))
    assert text == "Verbal cues" and notes == []


def test_binary_by_entry_full_url():
    urn = "urn:uuid:4f1c9d1e-0000-4000-8000-00000000b001"
    document = doc({"contentType": "text/plain", "url": urn})
    found = binary("b1", "text/plain", b"PNF patterns")
    text, notes = read(document, found, full_urls={"b1": urn})
    assert text == "PNF patterns" and notes == []


def test_binary_content_type_wins_over_the_attachment_label():
    document = doc({"contentType": "text/plain", "url": "Binary/b1"})
    text, _ = read(document, binary("b1", "text/html", b"<b>Perturbation</b> on foam"))
    assert text == "Perturbation on foam"


def test_missing_binary_is_a_note():
    text, notes = read(doc({"contentType": "text/html", "url": "Binary/gone"}))
    assert text == ""
    assert notes == [
        "DocumentReference/doc-9: the attachment refers to Binary/gone, which is not in the "
        "Bundle; its text is not read"
    ]


def test_url_to_something_other_than_a_binary_is_a_note():
    _, notes = read(doc({"contentType": "text/html", "url": "https://elsewhere.example/n.htm"}))
    assert notes == [
        "DocumentReference/doc-9: an attachment url does not point at a Binary; "
        "its text is not read"
    ]


def test_binary_above_the_cap_is_a_note_naming_the_limit():
    big = binary("b1", "text/plain", b"a" * (MAX_DOCUMENT_BYTES + 1))
    text, notes = read(doc({"url": "Binary/b1"}), big)
    assert text == "" and len(notes) == 1
    assert notes[0].startswith("DocumentReference/doc-9: Binary/b1 holds")
    assert "2048 KiB limit" in notes[0] and "MAX_DOCUMENT_BYTES" in notes[0]


def test_exactly_at_the_cap_is_read():
    text, notes = read(doc({"contentType": "text/plain", "data": b64(b"a" * MAX_DOCUMENT_BYTES)}))
    assert len(text) == MAX_DOCUMENT_BYTES and notes == []


def test_unsupported_type_is_a_note():
    text, notes = read(doc({"contentType": "image/jpeg", "data": b64(b"\xff\xd8\xff")}))
    assert text == ""
    assert notes == [
        "DocumentReference/doc-9: its attachment data is image/jpeg, a format that is not read; "
        "its text is not read"
    ]


def test_bad_base64_in_data_and_in_a_binary_are_notes():
    _, notes = read(doc({"contentType": "text/plain", "data": "%%%not-base64"}))
    assert notes == [
        "DocumentReference/doc-9: its attachment data is not valid base64; its text is not read"
    ]
    bad = {"resourceType": "Binary", "id": "b1", "contentType": "text/plain", "data": "@@@"}
    _, notes = read(doc({"url": "Binary/b1"}), bad)
    assert notes == ["DocumentReference/doc-9: Binary/b1 is not valid base64; its text is not read"]


def test_base64_wrapped_over_lines_is_read():
    wrapped = "\n".join(b64(b"Tandem stance with cues" * 4)[i : i + 20] for i in range(0, 124, 20))
    text, notes = read(doc({"contentType": "text/plain", "data": wrapped}))
    assert text == "Tandem stance with cues" * 4 and notes == []


def test_alternative_formats_are_read_once_most_readable_first():
    # Epic sends one note as an RTF and an HTML copy: the HTML is read, the RTF is not added.
    document = doc(
        {"contentType": "text/rtf", "url": "Binary/rtf"},
        {"contentType": "text/html", "url": "Binary/htm"},
    )
    text, notes = read(
        document, binary("rtf", "text/rtf", RTF), binary("htm", "text/html", b"<p>Cues</p>")
    )
    assert text == "Cues" and notes == []


def test_an_unreadable_copy_falls_back_to_the_next_format():
    document = doc(
        {"contentType": "text/html", "url": "Binary/missing"},
        {"contentType": "text/rtf", "url": "Binary/rtf"},
    )
    text, notes = read(document, binary("rtf", "text/rtf", RTF))
    assert "Impaired single-leg balance." in text
    assert len(notes) == 1 and "Binary/missing" in notes[0]


def test_hostile_shapes_never_raise():
    for content in (
        "not a list",
        ["not an object"],
        [{"attachment": "nope"}],
        [{"attachment": {}}],
        [{"attachment": {"data": 12, "url": 5}}],
        [{"attachment": {"url": "Binary/b1"}}],
    ):
        document = {"resourceType": "DocumentReference", "id": "d", "content": content}
        stray = {"resourceType": "Binary", "id": "b1", "data": ["x"]}
        text, _ = read(document, stray)
        assert text == ""


# --- the review: a 97112 whose documentation is only in an HTML Binary -----------------------

NOTE_HTML = (
    b"<html><body><h2>Daily note</h2>"
    b"<p>Deficits: impaired single-leg balance and decreased proprioception R ankle.</p>"
    b"<p>97112: perturbation training on foam with mod verbal and tactile cues; "
    b"PNF D2 patterns with manual facilitation.</p>"
    b"<p>Patient response: tolerated well, decreased sway, progressed from min A to CGA.</p>"
    b"</body></html>"
)


def binary_note_visit(with_binary: bool) -> dict:
    """A visit whose only note for 97112 is an HTML Binary the DocumentReference points at."""
    b = clean_visit()
    for entry in b.entries:
        resource = entry["resource"]
        if resource["resourceType"] == "Procedure" and resource["code"]["coding"][0]["code"] == (
            "97112"
        ):
            resource["note"] = [{"text": "See note."}]
        if resource["resourceType"] == "DocumentReference":
            resource["content"] = [
                {"attachment": {"contentType": "text/html", "url": f"{BASE}/Binary/note-1"}}
            ]
    if with_binary:
        b.add(binary("note-1", "text/html", NOTE_HTML))
    return b.bundle()


def doc_rules(bundle: dict) -> set[str]:
    report = review_bundle(bundle, encounter_id="enc-1")
    return {f.rule for f in report.findings if f.code == "97112" and f.rule.startswith("doc-")}


def test_97112_documented_only_in_an_html_binary_is_documented():
    without = doc_rules(binary_note_visit(with_binary=False))
    assert {"doc-no-deficit", "doc-no-skilled-intervention"} <= without  # the test can fail
    assert not {"doc-no-deficit", "doc-no-skilled-intervention"} & doc_rules(
        binary_note_visit(with_binary=True)
    )


def test_missing_binary_in_a_review_is_a_note_not_an_error():
    visit = build_visit(
        index_bundle(binary_note_visit(with_binary=False)), load_policy(), encounter_id="enc-1"
    )
    assert any("Binary/note-1, which is not in the Bundle" in n for n in visit.notes)


def test_binary_read_once_per_index_for_many_visits():
    bundle = binary_note_visit(with_binary=True)
    index = index_bundle(bundle)
    first = build_visit(index, load_policy(), encounter_id="enc-1")
    index.by_key["Binary/note-1"]["data"] = b64(b"changed")  # a second read would see this
    again = build_visit(index, load_policy(), encounter_id="enc-1")
    assert "perturbation training" in first.note_text and again.note_text == first.note_text


def test_builder_default_note_still_plain():
    visit = build_visit(index_bundle(VisitBuilder().bundle()), load_policy())
    assert "Deficits: impaired balance" in visit.note_text
