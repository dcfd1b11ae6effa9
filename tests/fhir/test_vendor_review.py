"""Each vendor-shaped visit (fixtures/vendor, shapes from Epic's, Oracle Health's, Synthea's and
HL7's published resources) reviews as a person reading the chart judges it
(fixtures/vendor/expected.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin.fhir.codemap import load_code_map
from plugin.review import review_bundle

VENDOR = Path(__file__).resolve().parents[2] / "fixtures" / "vendor"
EXPECTED = json.loads((VENDOR / "expected.json").read_text())["cases"]
CODE_MAP = load_code_map(VENDOR / "epic_code_map.csv")


@pytest.mark.parametrize("case", EXPECTED, ids=[c["file"] for c in EXPECTED])
def test_vendor_visit_reviews_as_a_person_reads_it(case):
    bundle = json.loads((VENDOR / case["file"]).read_text())
    report = review_bundle(bundle, encounter_id=case["encounter"], code_map=CODE_MAP)
    fired = {f.rule for f in report.findings}
    assert report.verdict == case["verdict"], [(f.rule, f.message) for f in report.findings]
    assert set(case["must_fire"]) <= fired
    assert not fired & set(case["must_not_fire"]), fired & set(case["must_not_fire"])
    rows = {s.code: s for s in report.services}
    for code, want in case["services"].items():
        row = rows[code]
        assert (row.minutes, row.billed_units, row.supported_units) == (
            want["minutes"],
            want["billed_units"],
            want["supported_units"],
        ), code
    assert report.total_timed_minutes == case["total_timed_minutes"]
    assert report.visit.total_minutes == case["total_treatment_minutes"]
    assert report.visit.note_signed == case["note_signed"]
    if "payer" in case:  # the payer as a reader of the chart names it, Medicare or not
        assert (report.visit.payer, report.visit.medicare) == (case["payer"], case["medicare"])


def test_an_unmapped_epic_code_is_named_in_a_note():
    bundle = json.loads((VENDOR / "epic_epic_codes.json").read_text())
    report = review_bundle(bundle, encounter_id="epic-epic-codes-enc-1")
    assert not report.services
    assert any("has no CPT/HCPCS code (urn:oid:" in n for n in report.visit.notes)


def test_where_minutes_came_from_is_said():
    bundle = json.loads((VENDOR / "epic_clean.json").read_text())
    report = review_bundle(bundle, encounter_id="epic-clean-enc-1")
    assert any("minutes read from its visit note" in n for n in report.visit.notes)
    assert any(
        "total treatment time 45 minutes read from the visit note" in n for n in report.visit.notes
    )
