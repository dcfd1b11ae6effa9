"""fetch_visit reads the episode (contract §2b): plans of care and their certification, the
discipline's earlier visits across 1 January, within 6 rounds at every profile; a refused or
unserved search becomes episode-unknown with the reason, never a silent pass."""

from __future__ import annotations

import pytest

import plugin.ehr.searches as searches
from plugin.ehr import FetchStats, Strategy, fetch_visit
from plugin.review import review_bundle
from plugin.synthetic.visit import clean_visit
from sandbox.profiles import PROFILES as VENDOR_RULES
from tests.ehr.test_fetch import FakeEhr


def rules(bundle: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in review_bundle(bundle, encounter_id="enc-1").findings:
        found.setdefault(f.rule, []).append(f.message)
    return found


def across_new_year() -> dict:
    """A PT episode from 20 November with ten treatment days in Nov/Dec and no progress report:
    the visit on 8 January is the 11th treatment day."""
    b = clean_visit(day="2026-01-08", plan_of_care=False)
    b.plan_of_care(start="2025-11-20", end="2026-02-17")
    days = ["2025-11-20", "2025-11-24", "2025-11-27", "2025-12-01", "2025-12-04"]
    days += ["2025-12-08", "2025-12-11", "2025-12-15", "2025-12-18", "2025-12-22"]
    for n, day in enumerate(days):
        b.earlier_visit(f"enc-h{n}", day, note="Balance training with cues.")
    return b.bundle()


def provenance_certified() -> dict:
    """A plan signed only in a Provenance, by an NP the rest of the record never names; first
    treatment 51 days before the visit, so without that signature it is not certified."""
    b = clean_visit(plan_of_care=False)
    b.plan_of_care(start="2026-01-10", end="2026-03-30", certified="never")
    b.earlier_visit("enc-0", "2026-01-12", note="Evaluation; balance training with cues.")
    b.add(
        {
            "resourceType": "Practitioner",
            "id": "np-1",
            "qualification": [{"code": {"text": "NP"}}],
        }
    )
    b.add(
        {
            "resourceType": "Provenance",
            "id": "prov-1",
            "target": [{"reference": "CarePlan/poc-1"}],
            "recorded": "2026-01-12T10:00:00-05:00",
            "agent": [{"who": {"reference": "Practitioner/np-1"}}],
            "signature": [
                {
                    "type": [
                        {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.5"}
                    ],
                    "when": "2026-01-12T10:00:00-05:00",
                    "who": {"reference": "Practitioner/np-1"},
                }
            ],
        }
    )
    return b.bundle()


def test_an_episode_across_1_january_is_read_whole():
    bundle = across_new_year()
    assert "progress-report-overdue" in rules(bundle)  # the file: day 11, overdue
    stats = FetchStats()
    fetched = fetch_visit(FakeEhr(bundle, "full"), "enc-1", stats=stats)
    assert rules(fetched).keys() == rules(bundle).keys()
    assert stats.rounds <= 6


def test_the_calendar_year_alone_would_miss_the_overdue_report(monkeypatch):
    # Guard for the test above: with only the visit's year searched, December is not seen.
    monkeypatch.setattr(searches, "HISTORY_DAYS", 0)
    fetched = fetch_visit(FakeEhr(across_new_year(), "full"), "enc-1")
    assert "progress-report-overdue" not in rules(fetched)


@pytest.mark.parametrize(("profile", "rounds"), [("full", 4), ("oracle", 3), ("epic", 3)])
def test_provenance_certifies_the_plan_at_every_profile(profile, rounds):
    bundle = provenance_certified()
    assert "poc-not-certified" not in rules(bundle)
    ehr = FakeEhr(bundle, profile)
    stats = FetchStats()
    fetched = fetch_visit(ehr, "enc-1", stats=stats)
    found = rules(fetched)
    assert "poc-not-certified" not in found and "episode-unknown" not in found
    # Epic and Oracle include Provenance with the CarePlan search (_revinclude); the full
    # profile declares no searchRevInclude, so Provenance is searched by target a round later
    # and its signer read in a fourth.
    assert stats.rounds == rounds
    assert ("search Provenance" in ehr.calls) == (profile == "full")


def test_without_the_provenance_the_plan_is_not_certified():
    # Guard: the signature that certifies the plan above is the Provenance's.
    bundle = provenance_certified()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Provenance"]
    assert "poc-not-certified" in rules(fetch_visit(FakeEhr(bundle, "full"), "enc-1"))


@pytest.mark.parametrize(
    ("refused", "why"),
    [
        ("CarePlan", "no PT plan of care could be read (the EHR refused the CarePlan search (400"),
        ("Encounter", "earlier PT visits could not be read (the EHR refused the Encounter search"),
        ("Procedure", "earlier PT visits could not be read (the EHR refused the Procedure search"),
    ],
)
def test_a_refused_episode_search_is_episode_unknown_with_the_reason(refused, why):
    bundle = clean_visit().bundle()
    assert "episode-unknown" not in rules(fetch_visit(FakeEhr(bundle, "full"), "enc-1"))
    ehr = FakeEhr(bundle, "full", refusing=frozenset({refused}))
    found = rules(fetch_visit(ehr, "enc-1"))
    assert any(m.startswith(why) for m in found["episode-unknown"]), found
    assert "poc-not-certified" not in found and "progress-report-overdue" not in found


def test_a_refused_provenance_search_leaves_the_certification_unknown():
    ehr = FakeEhr(provenance_certified(), "full", refusing=frozenset({"Provenance"}))
    found = rules(fetch_visit(ehr, "enc-1"))
    assert "poc-not-certified" not in found  # not an error: the signature may be there
    assert any(
        "certification could not be read (the EHR refused the Provenance search" in m
        for m in found["episode-unknown"]
    )


def test_a_server_without_care_plans_is_episode_unknown():
    bundle = clean_visit().bundle()
    ehr = FakeEhr(bundle, "full")
    statement = ehr.capabilities()
    for resource in statement["rest"][0]["resource"]:
        if resource["type"] == "CarePlan":
            resource["interaction"] = [{"code": "read"}]  # read, never searched
    found = rules(fetch_visit(ehr, "enc-1", strategy=Strategy.from_capabilities(statement)))
    assert not [c for c in ehr.calls if c == "search CarePlan"]
    assert any("does not serve CarePlan by patient" in m for m in found["episode-unknown"])


@pytest.mark.parametrize(
    ("profile", "rtype", "params", "why"),
    [
        ("epic", "CarePlan", [("patient", "p")], "category"),
        ("oracle", "Communication", [("patient", "p")], "-email-status"),
        ("oracle", "Provenance", [("agent", "Practitioner/x")], "target"),
        ("oracle", "CarePlan", [("patient", "p"), ("date", "ge2026-01-01T00:00:00Z")], "closed"),
    ],
)
def test_the_vendors_refuse_what_their_statements_say(profile, rtype, params, why):
    assert why in (VENDOR_RULES[profile].refusal(rtype, params) or "")
    assert VENDOR_RULES["full"].refusal(rtype, params) is None


def test_the_fetch_sends_what_the_vendors_accept():
    # What the fetch asks (category at Epic; no Communication by patient at Oracle) passes the
    # vendors' rules: the fetches above would otherwise carry refusal notes.
    for profile in ("epic", "oracle"):
        ehr = FakeEhr(clean_visit().bundle(), profile)
        fetched = fetch_visit(ehr, "enc-1")
        notes = [
            i["diagnostics"]
            for e in fetched["entry"]
            if e["resource"]["resourceType"] == "OperationOutcome"
            for i in e["resource"]["issue"]
        ]
        assert not [n for n in notes if "refused" in n], (profile, notes)
        assert "search CarePlan" in ehr.calls
        assert ("search Communication" in ehr.calls) == (profile == "epic")


def ordered_plan(sent: bool) -> dict:
    """An unsigned plan begun 51 days before the visit, with the physician's signed order and,
    when ``sent``, the plan sent to that physician within 30 days (the CY2025 exception)."""
    b = clean_visit(plan_of_care=False)
    b.plan_of_care(start="2026-01-10", end="2026-03-30", certified="never")
    b.earlier_visit("enc-0", "2026-01-12", note="Evaluation; balance training with cues.")
    b.add(
        {
            "resourceType": "ServiceRequest",
            "id": "sr-1",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/pat-1"},
            "requester": {"reference": "Practitioner/md"},
            "authoredOn": "2026-01-08",
        }
    )
    if sent:
        b.add(
            {
                "resourceType": "Communication",
                "id": "com-1",
                "status": "completed",
                "subject": {"reference": "Patient/pat-1"},
                "about": [{"reference": "CarePlan/poc-1"}],
                "recipient": [{"reference": "Practitioner/md"}],
                "sent": "2026-01-15",
            }
        )
    return b.bundle()


def test_the_order_exception_is_read_where_communication_is_served():
    assert "poc-not-certified" not in rules(ordered_plan(sent=True))  # the file: excepted
    assert "poc-not-certified" in rules(ordered_plan(sent=False))  # guard: without the message
    fetched = fetch_visit(FakeEhr(ordered_plan(sent=True), "epic"), "enc-1")
    assert "poc-not-certified" not in rules(fetched) and "episode-unknown" not in rules(fetched)


def test_where_communication_is_not_served_a_signed_order_leaves_certification_unknown():
    # Oracle serves Communication only as an inbox: with a signed order on file, the exception
    # may apply and cannot be seen, so the review says so instead of an error.
    found = rules(fetch_visit(FakeEhr(ordered_plan(sent=True), "oracle"), "enc-1"))
    assert "poc-not-certified" not in found
    assert any("does not serve Communication by patient" in m for m in found["episode-unknown"])
    # without any order the exception cannot apply: the error stands, and no note is added
    bundle = ordered_plan(sent=False)
    bundle["entry"] = [
        e for e in bundle["entry"] if e["resource"]["resourceType"] != "ServiceRequest"
    ]
    fetched = fetch_visit(FakeEhr(bundle, "oracle"), "enc-1")
    assert "poc-not-certified" in rules(fetched)
    notes = [
        str(e["resource"])
        for e in fetched["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
    ]
    assert not [n for n in notes if "Communication" in n]
