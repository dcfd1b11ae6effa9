"""Reading the visit the way a Medicare auditor would (issue 12, contract §2 and §2b).

Each test names the real-data shape that was read wrongly and the manual's words it follows.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder, clean_visit
from plugin.units import ladder_units
from tests.fhir.test_extract import BILL_CPT, ORACLE, charge_item

CPT = "http://www.ama-assn.org/go/cpt"


def resources(bundle, rtype):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def rules(report):
    return {f.rule for f in report.findings}


def service(report, code):
    return next(s for s in report.services if s.code == code)


# --- time -----------------------------------------------------------------------------------
def test_a_time_without_offset_is_read_in_the_bundles_zone_with_a_note():
    """24 minutes stay 24 when one end has no offset (read as UTC they became 324)."""
    b = VisitBuilder()
    proc = b.proc("97112", "09:00", "09:24")
    proc["performedPeriod"]["start"] = "2026-03-04T09:00:00"  # no offset, as some exports send
    b.line("97112", 2)
    report = review_bundle(b.bundle())
    assert service(report, "97112").minutes == 24
    assert report.verdict == "supported"
    assert any("without an offset; read in the offset -05:00" in n for n in report.visit.notes)


def test_a_malformed_time_elsewhere_does_not_stop_the_zone_being_found():
    """Looking for the Bundle's offset skips a value that is no dateTime (it raised before)."""
    b = VisitBuilder()
    broken = b.proc("97110", "08:30", "08:45")
    broken["performedPeriod"]["start"] = "2026-13-40T99:00:00-05:00"
    proc = b.proc("97112", "09:00", "09:24")
    proc["performedPeriod"]["start"] = "2026-03-04T09:00:00"
    b.line("97112", 2)
    bundle = b.bundle()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            entry["resource"]["period"]["start"] = "2026-03-04T08:30:00"
    report = review_bundle(bundle)
    assert service(report, "97112").minutes == 24
    assert any("without an offset; read in the offset -05:00" in n for n in report.visit.notes)
    # The malformed time itself is named, never skipped in silence.
    assert any(
        ".performedPeriod.start is not a valid dateTime" in n and "97110" not in n
        for n in report.visit.notes
    )
    assert service(report, "97110").minutes is None


@pytest.mark.parametrize(("start", "noted"), [("2026-03-04", False), ("yesterday", True)])
def test_a_date_alone_is_no_time_of_day_but_text_is_named(start, noted):
    b = VisitBuilder()
    proc = b.proc("97112", "09:00", "09:24")
    proc["performedPeriod"]["start"] = start
    b.line("97112", 2)
    notes = review_bundle(b.bundle()).visit.notes
    assert any("is not a valid dateTime" in n for n in notes) is noted


def test_the_organisations_time_zone_setting_wins(monkeypatch):
    monkeypatch.setenv("UNITGUARD_TIMEZONE", "America/Los_Angeles")
    b = VisitBuilder()
    proc = b.proc("97112", "09:00", "09:24")
    proc["performedPeriod"]["start"] = "2026-03-04T06:00:00"  # 06:00 Pacific = 09:00 -05:00
    b.line("97112", 2)
    report = review_bundle(b.bundle())
    assert service(report, "97112").minutes == 24
    assert any("read in America/Los_Angeles" in n for n in report.visit.notes)


def test_seconds_are_added_up_before_flooring():
    """3 x 7 min 50 s = 23 min 30 s: 23 minutes, 2 units (flooring each gave 21 and 1 unit)."""
    b = VisitBuilder()
    for start, end in (
        ("09:00:00", "09:07:50"),
        ("09:10:00", "09:17:50"),
        ("09:20:00", "09:27:50"),
    ):
        proc = b.proc("97112", "09:00", "09:01")
        proc["performedPeriod"] = {
            "start": f"2026-03-04T{start}-05:00",
            "end": f"2026-03-04T{end}-05:00",
        }
    b.line("97112", 2)
    report = review_bundle(b.bundle())
    assert report.total_timed_minutes == 23 and service(report, "97112").supported_units == 2


@pytest.mark.parametrize(
    ("length", "minutes"),
    [
        ({"value": 1, "unit": "h", "system": "http://unitsofmeasure.org", "code": "h"}, 60),
        ({"value": 1.5, "unit": "hours"}, 90),
        ({"value": 2700, "unit": "s", "code": "s"}, 45),
        ({"value": 45, "unit": "minutes"}, 45),
        ({"value": 3, "unit": "fortnights"}, None),
    ],
)
def test_encounter_length_is_converted_by_its_unit(length, minutes):
    b = clean_visit()
    b.encounter["length"] = length
    report = review_bundle(b.bundle())
    assert report.visit.total_minutes == minutes
    if minutes is None:
        assert any("unknown unit" in n for n in report.visit.notes)
        assert "doc-no-total-time" in rules(report)


def test_the_latest_encounter_is_chosen_by_instant_not_by_string():
    """23:00 at -05:00 (04:00 UTC next day) is later than 01:00 UTC the same next day."""
    b = clean_visit()
    b.encounter["period"]["start"] = "2026-03-04T23:00:00-05:00"
    b.add(
        {
            "resourceType": "Encounter",
            "id": "enc-early",
            "status": "finished",
            "subject": {"reference": "Patient/pat-1"},
            "period": {"start": "2026-03-05T01:00:00+00:00"},
        }
    )
    assert review_bundle(b.bundle()).visit.encounter == "Encounter/enc-1"


def test_an_evening_visit_stays_on_its_day_and_its_kx_year():
    b = clean_visit(day="2026-12-31")
    b.encounter["period"]["start"] = "2026-12-31T19:30:00-05:00"  # 00:30 UTC on 1 January
    visit = review_bundle(b.bundle()).visit
    assert str(visit.day) == "2026-12-31" and visit.year == 2026


def test_a_utc_instant_moves_into_the_configured_zone(monkeypatch):
    monkeypatch.setenv("UNITGUARD_TIMEZONE", "America/New_York")
    b = clean_visit(day="2026-12-31")
    b.encounter["period"]["start"] = "2027-01-01T00:30:00Z"
    assert str(review_bundle(b.bundle()).visit.day) == "2026-12-31"


# --- claims ---------------------------------------------------------------------------------
def test_a_replaced_claim_is_not_added_to_its_replacement():
    b = clean_visit()
    bundle = b.bundle()
    first = resources(bundle, "Claim")[0]
    second = copy.deepcopy(first)
    second["id"] = "claim-2"
    second["related"] = [
        {"claim": {"reference": "Claim/claim-1"}, "relationship": {"coding": [{"code": "prior"}]}}
    ]
    bundle["entry"].append({"resource": second})
    report = review_bundle(bundle)
    assert service(report, "97112").billed_units == 2  # not 4


def test_a_cancelled_claim_bills_nothing():
    bundle = clean_visit().bundle()
    resources(bundle, "Claim")[0]["status"] = "cancelled"
    report = review_bundle(bundle)
    assert report.visit.billed is None and not report.findings


def test_a_quantity_as_text_is_read_with_a_note():
    bundle = clean_visit().bundle()
    resources(bundle, "Claim")[0]["item"][0]["quantity"]["value"] = "3"
    report = review_bundle(bundle)
    assert service(report, "97112").billed_units == 3
    assert "units-exceed-time" in rules(report)
    assert any("quantity as the text '3'" in n for n in report.visit.notes)


def test_an_unreadable_quantity_is_never_read_as_one():
    bundle = clean_visit().bundle()
    resources(bundle, "Claim")[0]["item"][0]["quantity"]["value"] = "three"
    report = review_bundle(bundle)
    assert report.verdict == "needs-review"
    assert report.visit.unreadable == ("Claim/claim-1#item1",)
    assert any("not a whole number of units" in n for n in report.visit.notes)


def test_a_chargeitem_credit_nets_against_its_charge():
    b = VisitBuilder(payer="Medicare Part B")
    b.proc("97112", "09:00", "09:24")
    b.add(charge_item("c1", "97112", 3, net=105.0))
    b.add(charge_item("c2", "97112", -1, net=-35.0))  # the reversal Oracle posts
    report = review_bundle(b.bundle())
    assert service(report, "97112").billed_units == 2
    assert "units-exceed-time" not in rules(report)
    assert report.billed_total == 70.0


def test_oracle_cpt_is_picked_by_its_code_system():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    item = charge_item("c1", "97112", 2)
    item["extension"][0]["extension"].insert(
        0,
        {
            "url": "code",
            "valueCodeableConcept": {
                "coding": [{"system": f"{ORACLE}/BillCodes-CDM", "code": "PT110"}]
            },
        },
    )
    b.add(item)
    report = review_bundle(b.bundle())
    assert [s.code for s in report.services] == ["97112"]
    assert BILL_CPT.endswith("BillCodes-CPT")


# --- performers, signatures, measures -------------------------------------------------------
def test_epic_authenticator_by_display_signs_the_note():
    bundle = clean_visit().bundle()
    doc = resources(bundle, "DocumentReference")[0]
    doc["authenticator"] = {"display": "Rivera, Dana, PT"}
    assert "doc-unsigned" not in rules(review_bundle(bundle))


def test_a_vital_sign_is_not_an_objective_measure():
    b = VisitBuilder(measure=False)
    b.observation("enc-1", "2026-03-04T09:05:00-05:00", 37.1, loinc="8310-5")
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2)
    assert "doc-no-objective-measure" in rules(review_bundle(b.bundle()))


def test_minutes_from_a_duration_extension():
    b = VisitBuilder()
    proc = b.proc("97112", None, None)
    proc["performedDateTime"] = b.at("09:00")
    proc["extension"].append(
        {
            "url": "http://example.org/fhir/StructureDefinition/procedure-duration",
            "valueDuration": {
                "value": 24,
                "unit": "min",
                "system": "http://unitsofmeasure.org",
                "code": "min",
            },
        }
    )
    b.line("97112", 2)
    report = review_bundle(b.bundle())
    assert service(report, "97112").minutes == 24 and report.verdict == "supported"
    assert any("24 minutes read from its duration" in n for n in report.visit.notes)


def test_minutes_from_the_visit_note_line_for_the_code():
    note = "Treatment note. 97112 neuromuscular re-ed 23 min; 97110 ther ex 15 min. Signed, PT."
    b = VisitBuilder(visit_note=note)
    b.proc("97112", None, None, note="")
    b.proc("97110", None, None, note="")
    b.line("97112", 2)
    b.line("97110", 1)
    report = review_bundle(b.bundle())
    assert (service(report, "97112").minutes, service(report, "97110").minutes) == (23, 15)


# --- money ----------------------------------------------------------------------------------
def test_one_line_is_never_counted_twice():
    """A $105 line with units-exceed-time and missing-discipline-modifier risks $105, not more."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 3, mods=())
    report = review_bundle(b.bundle())
    assert {"units-exceed-time", "missing-discipline-modifier"} <= rules(report)
    assert report.dollars_at_risk == pytest.approx(105.0) == report.billed_total


def test_an_unsigned_note_puts_the_whole_visit_at_risk():
    report = review_bundle(clean_visit(signed=False).bundle())
    assert report.dollars_at_risk == report.billed_total > 0


def test_before_charges_the_review_says_what_to_bill():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.proc("97110", "09:24", "09:47", note="Strength 3x10, cues.")
    report = review_bundle(b.bundle())
    assert report.visit.billed is None and report.dollars_at_risk == 0
    assert {s.code: s.suggested_units for s in report.services} == {"97112": 2, "97110": 1}


# --- properties -----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    minutes=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    units=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    mods=st.sampled_from([("GP",), (), ("GO",), ("GP", "CQ")]),
    signed=st.booleans(),
)
def test_dollars_at_risk_never_exceed_what_was_billed(minutes, units, mods, signed):
    b = VisitBuilder(signed=signed)
    codes = ["97112", "97110", "97140", "97116"]
    start = 0  # back to back from 09:00, each code its minutes
    for code, m in zip(codes, minutes, strict=False):
        proc = b.proc(code, "09:00", "09:01")
        proc["performedPeriod"] = {
            "start": f"2026-03-04T{9 + start // 60:02d}:{start % 60:02d}:00-05:00",
            "end": f"2026-03-04T{9 + (start + m) // 60:02d}:{(start + m) % 60:02d}:00-05:00",
        }
        start += m
    for code, n in zip(codes, units, strict=False):
        b.line(code, n, mods=mods)
    report = review_bundle(b.bundle())
    assert 0 <= report.dollars_at_risk <= report.billed_total + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    morning=st.integers(0, 40),
    afternoon=st.integers(0, 40),
    billed_morning=st.integers(0, 4),
    billed_afternoon=st.integers(0, 4),
)
def test_pooling_a_day_never_supports_more_than_its_minutes(
    morning, afternoon, billed_morning, billed_afternoon
):
    b = VisitBuilder()
    b.proc("97112", "09:00", f"09:{morning:02d}")
    b.add(
        {
            "resourceType": "Encounter",
            "id": "enc-2",
            "status": "finished",
            "subject": {"reference": "Patient/pat-1"},
            "period": {"start": b.at("14:00")},
        }
    )
    b.proc("97112", "14:00", f"14:{afternoon:02d}", encounter="enc-2")
    if billed_morning:
        b.line("97112", billed_morning)
    if billed_afternoon:
        b.line("97112", billed_afternoon, encounter="enc-2")
    bundle = b.bundle()
    day_units = ladder_units(morning + afternoon)
    one = service(review_bundle(bundle, encounter_id="enc-1"), "97112").supported_units
    two = service(review_bundle(bundle, encounter_id="enc-2"), "97112").supported_units
    assert one <= day_units and two <= day_units
    # What each visit may bill, added to what the other billed, stays within the day.
    assert min(one, billed_morning) + billed_afternoon <= max(day_units, billed_afternoon)
