"""Only therapy encounters are reviewed: an organisation's export is mostly wellness, emergency
and inpatient care, which is listed as skipped, never judged against therapy billing rules."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from click.testing import CliRunner

from plugin.batch.audit import run_audit
from plugin.batch.mixed import generate_mixed
from plugin.cli import main
from plugin.fhir.extract import build_visit
from plugin.fhir.index import Index
from plugin.fhir.therapy import therapy_encounters
from plugin.policy import load_policy

CPT = "http://www.ama-assn.org/go/cpt"
NUCC = "http://nucc.org/provider-taxonomy"
ORACLE = "https://fhir-ehr.cerner.com/r4/StructureDefinition/"


def encounter(eid: str, day: str = "2026-03-04", hour: int = 9, **extra) -> dict:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "subject": {"reference": "Patient/p"},
        "period": {"start": f"{day}T{hour:02d}:00:00-05:00"},
        **extra,
    }


def procedure(pid: str, eid: str, code: str, system: str = CPT, actor: str | None = None):
    found = {
        "resourceType": "Procedure",
        "id": pid,
        "status": "completed",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p"},
        "encounter": {"reference": f"Encounter/{eid}"},
    }
    if actor:
        found["performer"] = [{"actor": {"reference": actor}}]
    return found


def claim(cid: str, code: str, eid: str | None, status: str = "active", day="2026-03-04"):
    item = {"sequence": 1, "productOrService": {"coding": [{"system": CPT, "code": code}]}}
    item["servicedDate"] = day
    if eid:
        item["encounter"] = [{"reference": f"Encounter/{eid}"}]
    return {
        "resourceType": "Claim",
        "id": cid,
        "status": status,
        "use": "claim",
        "patient": {"reference": "Patient/p"},
        "item": [item],
    }


def practitioner(pid: str, taxonomy: str | None) -> dict:
    found = {"resourceType": "Practitioner", "id": pid}
    if taxonomy:
        found["qualification"] = [{"code": {"coding": [{"system": NUCC, "code": taxonomy}]}}]
    return found


def therapy_of(resources: list[dict]) -> set[str]:
    index = Index([(r, "") for r in resources])
    found = therapy_encounters(index, load_policy())
    assert not index.notes  # reading which encounters to review notes nothing
    return set(found)


def test_a_therapy_code_on_a_procedure_or_a_billed_line_makes_a_therapy_visit():
    resources = [
        encounter("pt-proc"),
        procedure("a", "pt-proc", "97110"),
        encounter("wellness", hour=11),
        procedure("b", "wellness", "710824005", system="http://snomed.info/sct"),
        claim("c-well", "99397", "wellness"),
        encounter("er", day="2026-03-05"),
        claim("c-er", "99284", "er"),
        encounter("billed-only", day="2026-03-06"),
        claim("c-pt", "97140", "billed-only"),
        encounter("eval", day="2026-03-07"),
        claim("c-eval", "97163", "eval"),  # an untimed code counts too
        encounter("cancelled", day="2026-03-08"),
        claim("c-cancel", "97110", "cancelled", status="cancelled"),
        encounter("charge", day="2026-03-09"),
        {
            "resourceType": "ChargeItem",
            "id": "ci",
            "status": "billed",
            "subject": {"reference": "Patient/p"},
            "context": {"reference": "Encounter/charge"},
            "code": {"coding": [{"system": "urn:oid:1.2.3", "code": "4711"}]},
            "extension": [
                {
                    "url": f"{ORACLE}procedure-code",
                    "valueCodeableConcept": {"coding": [{"system": CPT, "code": "97530"}]},
                }
            ],
        },
    ]
    assert therapy_of(resources) == {
        "Encounter/pt-proc",
        "Encounter/billed-only",
        "Encounter/eval",
        "Encounter/charge",
    }


def test_a_therapist_performer_or_participant_makes_a_therapy_visit():
    resources = [
        practitioner("ot", "225X00000X"),
        practitioner("md", "207Q00000X"),
        practitioner("nobody", None),
        {
            "resourceType": "PractitionerRole",
            "id": "slp-role",
            "practitioner": {"reference": "Practitioner/nobody"},
            "code": [{"text": "Speech-Language Pathologist"}],
        },
        encounter("by-ot"),
        procedure("a", "by-ot", "ABC", system="urn:epic:proc", actor="Practitioner/ot"),
        encounter("by-md", hour=11),
        procedure("b", "by-md", "ABC", system="urn:epic:proc", actor="Practitioner/md"),
        encounter(
            "slp",
            day="2026-03-05",
            participant=[{"individual": {"reference": "PractitionerRole/slp-role"}}],
        ),  # noqa: E501
        encounter(
            "gp", day="2026-03-06", participant=[{"individual": {"reference": "Practitioner/md"}}]
        ),  # noqa: E501
        encounter("dangling", day="2026-03-07"),
        procedure("c", "dangling", "ABC", system="urn:epic:proc", actor="Practitioner/gone"),
    ]
    assert therapy_of(resources) == {"Encounter/by-ot", "Encounter/slp"}


def test_a_claim_naming_no_encounter_counts_for_the_visit_the_review_gives_it_to():
    resources = [
        encounter("morning", hour=8),  # the first of the day, but without a Procedure
        encounter("therapy", hour=10),
        procedure("a", "therapy", "ABC", system="urn:epic:proc"),
        encounter("other-day", day="2026-03-05"),
        claim("c", "97112", None),
        claim("c-none", "97112", None, day="2026-04-01"),  # no encounter on that date
    ]
    assert therapy_of(resources) == {"Encounter/therapy"}
    without_procedures = [r for r in resources if r["resourceType"] != "Procedure"]
    assert therapy_of(without_procedures) == {"Encounter/morning"}


@pytest.mark.parametrize(
    "starts",
    [
        # A date alone starts at its midnight UTC for the review; 01:00 at +05:00 on the same
        # date is 20:00 UTC the evening before, so it comes first.
        {"dated": "2026-03-04", "early": "2026-03-04T01:00:00+05:00"},
        # A time without an offset is read in the Bundle's own offset (-05:00), not as UTC:
        # 12:00 is then 17:00 UTC, after the other visit's 14:00 UTC.
        {"naive": "2026-03-04T12:00:00", "offset": "2026-03-04T09:00:00-05:00"},
    ],
)
def test_the_audit_and_the_review_give_a_claim_naming_no_encounter_to_the_same_visit(
    starts, monkeypatch
):
    """The audit reviews the visit the review gives the line to: read in two ways, the order
    of a day's visits sent the 97112 line to a visit the audit then skipped as not therapy."""
    monkeypatch.delenv("UNITGUARD_TIMEZONE", raising=False)
    resources = [{"resourceType": "Patient", "id": "p"}, claim("c", "97112", None)]
    for eid, start in starts.items():
        resources.append({**encounter(eid), "period": {"start": start}})
    policy = load_policy()
    given = {
        f"Encounter/{eid}"
        for eid in starts
        if build_visit(Index([(r, "") for r in resources]), policy, encounter_id=eid).billed
    }
    assert len(given) == 1
    assert therapy_of(resources) == given


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    data = tmp_path_factory.mktemp("mixed")
    counts = generate_mixed(data, patients=6, seed=3)
    out = tmp_path_factory.mktemp("mixed-out")
    result = run_audit(data, out, buckets=3, progress=False)
    return data, out, result, counts


def rows(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_a_mixed_export_reviews_exactly_its_therapy_visits(mixed):
    data, out, result, counts = mixed
    therapy = {r["encounter"] for r in rows(data / "therapy.csv")}
    assert therapy and counts["encounters"] > 10 * len(therapy)  # mostly other care
    visits = rows(out / "visits.csv")
    reviewed = {v["encounter"] for v in visits if v["verdict"] != "skipped"}
    skipped = [v for v in visits if v["verdict"] == "skipped"]
    assert reviewed == therapy
    assert result.visits == len(therapy) and result.skipped == len(skipped)
    assert len(visits) == counts["encounters"] == len({v["encounter"] for v in visits})
    assert all(v["findings"] == "0" and v["date"] and v["patient"] for v in skipped)
    # the therapy visits are clean: the wellness, emergency and inpatient care around them
    # adds no finding
    assert Counter(v["verdict"] for v in visits if v["verdict"] != "skipped") == {
        "supported": len(therapy)
    }
    assert not rows(out / "findings.csv")
    report = (out / "report.html").read_text()
    assert (
        f"{len(therapy):,} therapy visits reviewed, {len(skipped):,} other encounters skipped"
        in " ".join(report.split())
    )


def test_the_cli_line_counts_reviewed_and_skipped(mixed, tmp_path):
    data, _, result, _ = mixed
    done = CliRunner().invoke(main, ["audit", str(data), "--out", str(tmp_path / "o")])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(
        f"{result.visits} therapy visits reviewed, {result.skipped} other encounters skipped, "
        "0 findings, 0 unreadable lines"
    )
