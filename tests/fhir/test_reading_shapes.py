"""Real-data shapes the reading once got wrong (issue 21; contract §2, "who furnished it", "what
was billed", "Unread is not absent"): contained resources, the role in force on the date of
service, credits posted later, `$modify` replacements, Synthea's claims, a payer by display.

Each test builds the shape on the synthetic visit (2026-03-04, Medicare, 97112 09:00-09:24 by
the PT) and says what a reader of the chart would judge.
"""

from __future__ import annotations

import copy

from plugin.fhir.index import index_bundle
from plugin.fhir.therapy import therapy_encounters
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder
from tests.fhir.test_extract import ORACLE, charge_item

NUCC = "http://nucc.org/provider-taxonomy"


def resources(bundle, rtype):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def rules(report):
    return {f.rule for f in report.findings}


def billed(report, code):
    return next(s for s in report.services if s.code == code).billed_units


def one(bundle, rtype, rid):
    return next(r for r in resources(bundle, rtype) if r["id"] == rid)


def add(bundle, resource):
    bundle["entry"].append(
        {
            "fullUrl": f"https://ehr.example.org/fhir/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
        }
    )


# --- contained resources --------------------------------------------------------------------
def contained_claim_visit() -> dict:
    """The visit billed by a Claim whose Coverage is contained (#cov) and whose Coverage names
    its payer as a sibling contained Organization (#payer); no standalone Coverage."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2)
    bundle = b.bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Coverage"]
    claim = resources(bundle, "Claim")[0]
    claim["contained"] = [
        {
            "resourceType": "Coverage",
            "id": "cov",
            "status": "active",
            "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": "1"}]},
            "beneficiary": {"reference": "Patient/pat-1"},
            "payor": [{"reference": "#payer"}],
        },
        {"resourceType": "Organization", "id": "payer", "name": "Noridian Medicare Part B"},
    ]
    claim["insurance"][0]["coverage"] = {"reference": "#cov"}
    return bundle


def test_a_claims_contained_coverage_gives_the_payer():
    bundle = contained_claim_visit()
    before = copy.deepcopy(bundle)
    report = review_bundle(bundle)
    assert (report.visit.payer, report.visit.medicare) == ("Noridian Medicare Part B", True)
    assert report.visit.episode_required  # the Medicare-only rules run
    assert bundle == before  # the caller's resources are left as they were


def test_a_reference_to_a_contained_resource_that_is_not_there_is_a_note():
    bundle = contained_claim_visit()
    resources(bundle, "Claim")[0]["insurance"][0]["coverage"] = {"reference": "#gone"}
    report = review_bundle(bundle)
    assert report.visit.payer is None
    assert any(
        "refers to Claim/claim-1#gone, which is not in the Bundle" in n for n in report.visit.notes
    )


def test_a_contained_resource_is_no_resource_of_the_visit():
    """A Procedure contained in another resource is part of it, never a service of the visit."""
    bundle = contained_claim_visit()
    proc = copy.deepcopy(resources(bundle, "Procedure")[0])
    proc["id"] = "inner"
    resources(bundle, "Claim")[0]["contained"].append(proc)
    report = review_bundle(bundle)
    assert [s.code for s in report.services] == ["97112"]
    assert next(s for s in report.services if s.code == "97112").minutes == 24


def test_a_holder_known_only_by_its_full_url_resolves_its_contained_resources():
    bundle = contained_claim_visit()
    entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
    del entry["resource"]["id"]
    entry["fullUrl"] = "urn:uuid:7c1d2a40-0000-4000-8000-000000000001"
    index = index_bundle(bundle)
    claim = index.by_type["Claim"][0]
    key, coverage = index.resolve(claim["insurance"][0]["coverage"], "test")
    assert key == "urn:uuid:7c1d2a40-0000-4000-8000-000000000001#cov"
    assert coverage["resourceType"] == "Coverage"


# --- the role in force on the date of service ------------------------------------------------
def pt_with_expired_pta_first(bundle, ended="2025-12-31", since="2026-01-01"):
    pt = one(bundle, "Practitioner", "pt")
    pt["qualification"] = [
        {"code": {"coding": [{"system": NUCC, "code": "225200000X"}]}, "period": {"end": ended}},
        {"code": {"coding": [{"system": NUCC, "code": "225100000X"}]}, "period": {"start": since}},
    ]


def assisted_visit() -> VisitBuilder:
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2)
    return b


def test_an_expired_assistant_qualification_listed_first_leaves_a_therapist():
    bundle = assisted_visit().bundle()
    pt_with_expired_pta_first(bundle)
    report = review_bundle(bundle)
    assert "missing-assistant-modifier" not in rules(report)
    assert report.verdict == "supported"
    assert any(
        "its PTA qualification (... to 2025-12-31) is not in force" in n for n in report.visit.notes
    )


def test_a_qualification_not_yet_in_force_is_not_the_role_either():
    """Licensed as a PT only after the visit: on the date of service still an assistant."""
    bundle = assisted_visit().bundle()
    pt_with_expired_pta_first(bundle, ended="2026-06-30", since="2026-07-01")
    report = review_bundle(bundle)
    assert "missing-assistant-modifier" in rules(report)


def test_no_role_in_force_is_an_unknown_role_and_decides_nothing():
    bundle = assisted_visit().bundle()
    pt = one(bundle, "Practitioner", "pt")
    pt["qualification"][0]["period"] = {"start": "2015-01-01", "end": "2020-12-31"}
    report = review_bundle(bundle)
    performer = next(s for s in report.visit.services if s.code == "97112").performers[0]
    assert performer.discipline is None and not performer.assistant
    assert not {"missing-assistant-modifier", "discipline-modifier-mismatch"} & rules(report)


def role(rid, code, practitioner="pt", **fields):
    return {
        "resourceType": "PractitionerRole",
        "id": rid,
        "practitioner": {"reference": f"Practitioner/{practitioner}"},
        "code": [{"coding": [{"system": NUCC, "code": code}]}],
        **fields,
    }


def test_an_inactive_practitioner_role_is_not_read_and_the_person_is():
    """The performer is the PTA role the person held before (active false); the Practitioner
    it names is a PT: a therapist furnished the minutes."""
    bundle = assisted_visit().bundle()
    add(bundle, role("old-role", "225200000X", active=False))
    proc = resources(bundle, "Procedure")[0]
    proc["performer"] = [{"actor": {"reference": "PractitionerRole/old-role"}}]
    report = review_bundle(bundle)
    performer = next(s for s in report.visit.services if s.code == "97112").performers[0]
    assert (performer.discipline, performer.assistant) == ("PT", False)
    assert "missing-assistant-modifier" not in rules(report)
    assert any("PractitionerRole/old-role is inactive" in n for n in report.visit.notes)


def test_a_practitioner_role_whose_period_ended_is_not_read():
    bundle = assisted_visit().bundle()
    add(bundle, role("pta-role", "225200000X", period={"end": "2026-03-03"}))
    resources(bundle, "Procedure")[0]["performer"] = [
        {"actor": {"reference": "PractitionerRole/pta-role"}}
    ]
    assert "missing-assistant-modifier" not in rules(review_bundle(bundle))
    # the day before it ended, the same role was in force: an assistant, CQ needed
    one(bundle, "PractitionerRole", "pta-role")["period"] = {"end": "2026-03-04"}
    assert "missing-assistant-modifier" in rules(review_bundle(bundle))


def test_an_assistants_progress_report_is_not_a_therapists_by_an_expired_qualification():
    """The report author's role is read on the date the report was written."""
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 2)
    b.treatment_days(tuple(f"2026-02-{d:02d}" for d in range(18, 28)))  # the visit: day 11
    b.progress_report("2026-02-28", author="pt")
    bundle = b.bundle()
    pt_with_expired_pta_first(bundle, ended="2026-01-31", since="2026-02-01")
    assert "progress-report-overdue" not in rules(review_bundle(bundle))
    pt_with_expired_pta_first(bundle, ended="2026-03-31", since="2026-04-01")
    assert "progress-report-overdue" in rules(review_bundle(bundle))


# --- ChargeItems: credits posted later, $modify ------------------------------------------------
def charged_visit(*items) -> dict:
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    bundle = b.bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Claim"]
    for item in items:
        add(bundle, item)
    return bundle


def test_a_credit_posted_days_later_nets_against_its_charge():
    credit = charge_item("ci-credit", "97112", -1, net=-35.0)
    credit["occurrenceDateTime"] = "2026-03-09T15:00:00-05:00"
    report = review_bundle(charged_visit(charge_item("ci-1", "97112", 3, net=105.0), credit))
    assert billed(report, "97112") == 2
    assert "units-exceed-time" not in rules(report)
    assert report.billed_total == 70.0


def test_a_credit_of_another_visit_does_not_net_here():
    other = charge_item("ci-credit", "97112", -1, net=-35.0)
    other["context"] = {"reference": "Encounter/enc-9"}
    report = review_bundle(charged_visit(charge_item("ci-1", "97112", 3, net=105.0), other))
    assert billed(report, "97112") == 3


def replacing(item, old):
    item["extension"].append(
        {
            "extension": [{"valueId": "1", "url": "item-version"}],
            "valueReference": {"reference": f"ChargeItem/{old}"},
            "url": f"{ORACLE}/replacing",
        }
    )
    return item


def test_a_charge_modify_replaced_counts_once_as_the_new_one():
    old = charge_item("ci-1", "97112", 3, net=105.0)
    new = replacing(charge_item("ci-2", "97112", 2, net=70.0), "ci-1")
    newer = replacing(charge_item("ci-3", "97112", 2, mods=("GP", "KX"), net=70.0), "ci-2")
    report = review_bundle(charged_visit(old, new))
    assert billed(report, "97112") == 2 and report.billed_total == 70.0
    assert any("ChargeItem/ci-2 replaces ChargeItem/ci-1" in n for n in report.visit.notes)
    report = review_bundle(charged_visit(old, new, newer))  # modified twice: the last counts
    line = report.visit.billed[0]
    assert (line.ref, line.units, line.modifiers) == ("ChargeItem/ci-3", 2, {"GP", "KX"})


def test_a_charge_offset_by_its_credit_counts_with_neither():
    charge = charge_item("ci-1", "97112", 3, net=105.0)
    charge["extension"].append(
        {"valueReference": {"reference": "ChargeItem/ci-9"}, "url": f"{ORACLE}/offset-by"}
    )
    credit = charge_item("ci-9", "97112", -3, net=-105.0)
    recharge = charge_item("ci-2", "97112", 2, net=70.0)
    report = review_bundle(charged_visit(charge, credit, recharge))
    assert billed(report, "97112") == 2
    report = review_bundle(charged_visit(charge, recharge))  # the credit not read: still offset
    assert billed(report, "97112") == 2


# --- Synthea's Claim: the Encounter on the first item only ---------------------------------------
def synthea_visit(second_encounter: str | None = None) -> dict:
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.proc("97110", "09:24", "09:39")
    b.line("97112", 3)
    b.line("97110", 1)
    bundle = b.bundle()
    claim = resources(bundle, "Claim")[0]
    for item in claim["item"]:
        del item["encounter"]
    claim["item"].insert(
        0,
        {
            "sequence": 0,
            "productOrService": {
                "coding": [{"system": "http://snomed.info/sct", "code": "185347001"}]
            },
            "encounter": [{"reference": "Encounter/enc-1"}],
        },
    )
    if second_encounter:
        claim["item"][1]["encounter"] = [{"reference": second_encounter}]
    return bundle


def test_synthea_claim_items_that_name_no_encounter_are_the_visits():
    bundle = synthea_visit()
    report = review_bundle(bundle)
    assert billed(report, "97112") == 3 and billed(report, "97110") == 1
    assert "units-exceed-time" in rules(report)  # 39 minutes support 3 units, 4 are billed
    assert "Encounter/enc-1" in therapy_encounters(index_bundle(bundle), load_policy())


def test_items_of_a_claim_naming_several_encounters_are_left_with_a_note():
    bundle = synthea_visit(second_encounter="Encounter/enc-2")
    report = review_bundle(bundle)
    assert billed(report, "97110") == 0
    assert any("belong to none of the several" in n for n in report.visit.notes)


def test_a_payer_named_only_by_display_is_the_payer():
    """Synthea writes Claim.insurance.coverage as a display and no Coverage resource."""
    bundle = synthea_visit()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Coverage"]
    resources(bundle, "Claim")[0]["insurance"][0]["coverage"] = {"display": "Medicare"}
    report = review_bundle(bundle)
    assert (report.visit.payer, report.visit.medicare) == ("Medicare", True)
    assert any("names its payer only by display ('Medicare')" in n for n in report.visit.notes)
