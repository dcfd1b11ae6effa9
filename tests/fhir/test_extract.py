"""Reading the visit model from FHIR: Oracle ChargeItem, Epic search Bundles, odd shapes."""

from __future__ import annotations

import base64

import pytest

from plugin.errors import InputError
from plugin.fhir import build_visit, index_bundle
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder, clean_visit

ORACLE = "https://fhir-ehr.cerner.com/r4/StructureDefinition"
BILL_CPT = "https://fhir.cerner.com/ec2458f2-1e24-41c8-b71b-0e701af7583d/CodeSystem/BillCodes-CPT"


def visit_of(bundle, **kwargs):
    return build_visit(index_bundle(bundle), load_policy(), **kwargs)


def charge_item(cid, code, units, mods=("GP",), net=70.0, nested=True):
    if nested:
        code_ext = {
            "url": f"{ORACLE}/procedure-code",
            "extension": [
                {
                    "url": "code",
                    "valueCodeableConcept": {"coding": [{"system": BILL_CPT, "code": code}]},
                }
            ],
        }
    else:
        code_ext = {
            "url": f"{ORACLE}/procedure-code",
            "valueCodeableConcept": {"coding": [{"system": BILL_CPT, "code": code}]},
        }
    return {
        "resourceType": "ChargeItem",
        "id": cid,
        "status": "billable",
        "code": {"text": "NEUROMUSCULAR REEDUCATION"},
        "subject": {"reference": "Patient/pat-1"},
        "context": {"reference": "Encounter/enc-1"},
        "occurrenceDateTime": "2026-03-04T09:00:00-05:00",
        "quantity": {"value": units},
        "extension": [code_ext]
        + [
            {
                "url": f"{ORACLE}/modifier-code",
                "extension": [{"url": "code", "valueCodeableConcept": {"coding": [{"code": m}]}}],
            }
            for m in mods
        ]
        + [{"url": f"{ORACLE}/net-price", "valueMoney": {"value": net, "currency": "USD"}}],
    }


@pytest.mark.parametrize("nested", [True, False])
def test_oracle_charge_items_are_billed_lines(nested):
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.add(charge_item("ci-1", "97112", 3, nested=nested))
    visit = visit_of(b.bundle())
    assert visit.billed is not None and len(visit.billed) == 1
    line = visit.billed[0]
    assert (line.code, line.units, line.modifiers, line.amount) == (
        "97112",
        3,
        frozenset({"GP"}),
        70.0,
    )
    report = review_bundle(b.bundle())
    assert {f.rule for f in report.findings} >= {"units-exceed-time"}


def test_charge_items_in_other_statuses_are_ignored():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    item = charge_item("ci-1", "97112", 2)
    item["status"] = "entered-in-error"
    b.add(item)
    assert visit_of(b.bundle()).billed is None


def test_epic_search_bundle_outcomes_are_notes():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    bundle = b.bundle()
    bundle["type"] = "searchset"
    bundle["entry"].append(
        {
            "search": {"mode": "outcome"},
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "informational",
                        "diagnostics": "Some resources were not returned",
                    }
                ],
            },
        }
    )
    visit = visit_of(bundle)
    assert visit.billed is None
    assert any("Some resources were not returned" in n for n in visit.notes)
    report = review_bundle(bundle)
    assert not [f for f in report.findings if f.rule == "units-exceed-time"]
    assert {s.code: s.supported_units for s in report.services} == {"97112": 2}


def test_procedures_not_done_or_in_error_are_ignored():
    b = clean_visit()
    b.proc("97530", "09:50", "10:20", status="not-done")
    b.proc("97116", "09:50", "10:20", status="entered-in-error")
    codes = {s.code for s in visit_of(b.bundle()).services}
    assert codes == {"97112", "97110"}


def test_several_procedures_of_one_code_add_up():
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:10")
    b.proc("97112", "09:30", "09:45")
    report = review_bundle(b.bundle())
    assert report.total_timed_minutes == 25 and report.total_timed_units == 2


def test_reversed_period_is_noted_and_not_counted():
    b = VisitBuilder()
    b.proc("97112", "09:30", "09:00")
    visit = visit_of(b.bundle())
    assert visit.services[0].minutes is None
    assert any("ends before it starts" in n for n in visit.notes)


def test_performer_discipline_from_practitioner_role():
    b = VisitBuilder()
    b.add(
        {
            "resourceType": "PractitionerRole",
            "id": "role-ota",
            "practitioner": {"reference": "Practitioner/ot"},
            "code": [{"coding": [{"code": "OTA"}]}],
        }
    )
    proc = b.proc("97112", "09:00", "09:20")
    proc["performer"] = [{"actor": {"reference": "PractitionerRole/role-ota"}}]
    performer = visit_of(b.bundle()).services[0].performers[0]
    assert (performer.discipline, performer.assistant) == ("OT", True)


def test_visit_note_text_from_base64_and_bad_base64_noted():
    b = VisitBuilder(visit_note="Total treatment time 50 minutes.")
    bundle = b.bundle()
    visit = visit_of(bundle)
    assert "Total treatment time 50 minutes." in visit.note_text and visit.note_signed
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            entry["resource"]["content"][0]["attachment"]["data"] = "%%%not-base64"
    assert any("not valid base64" in n for n in visit_of(bundle).notes)


def test_html_note_is_read_as_text():
    b = VisitBuilder()
    bundle = b.bundle()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            att = entry["resource"]["content"][0]["attachment"]
            att["contentType"] = "text/html"
            att["data"] = base64.b64encode(b"<p>Impaired&nbsp;balance</p>").decode()
    assert "Impaired\xa0balance" in visit_of(bundle).note_text


def test_claim_payer_medicare_by_sopt_and_method_from_payer_table():
    visit = visit_of(clean_visit(payer="Some Plan", sopt="1").bundle())
    assert visit.medicare and visit.method == "cms"
    visit = visit_of(clean_visit(payer="Acme Commercial", sopt="5").bundle())
    assert not visit.medicare


def test_urn_uuid_references_resolve_through_full_urls():
    bundle = clean_visit().bundle()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            entry["fullUrl"] = "urn:uuid:0b6a7f8e-0000-4000-8000-000000000001"
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Procedure":
            res["encounter"] = {"reference": "urn:uuid:0b6a7f8e-0000-4000-8000-000000000001"}
    assert len(visit_of(bundle).services) == 2


def test_no_encounter_is_an_input_error():
    with pytest.raises(InputError, match="no Encounter"):
        visit_of({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]})


def test_wrong_types_read_as_absent():
    bundle = clean_visit().bundle()
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Procedure":
            res["performedPeriod"] = "yesterday"
            res["performer"] = {"actor": 3}
            res["note"] = "free text"
    visit = visit_of(bundle)
    assert all(s.minutes is None for s in visit.services)
