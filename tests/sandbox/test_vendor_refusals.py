"""The sandbox's epic and oracle profiles serve what the vendors' published R4 statements
declare and refuse the rest over HTTP, and the fetch meets them as production will: it asks what
the statement allows, and what it still cannot read is said, never taken for absent (contract §2,
§5; issue 21)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from plugin.ehr import fetch_visit
from plugin.ehr.searches import measure_categories
from plugin.ehr.strategy import Strategy
from plugin.review import review_bundle
from sandbox.declared import declared
from smart_launch import FhirClient, make_session
from tests.loopback import running_sandbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def boxes():
    with (
        running_sandbox("epic", open_access=True) as epic,
        running_sandbox("oracle", open_access=True) as oracle,
        running_sandbox("full", open_access=True) as full,
    ):
        yield {"epic": epic, "oracle": oracle, "full": full}


def get(box, path: str, **params) -> requests.Response:
    return requests.get(f"{box.fhir}/{path}", params=params, headers={"Accept": FHIR_JSON})


@pytest.mark.parametrize("vendor", ["epic", "oracle"])
def test_the_statement_serves_no_more_than_the_vendors(boxes, vendor):
    statement = get(boxes[vendor], "metadata").json()
    published = declared(vendor)
    served = statement["rest"][0]["resource"]
    assert served
    for resource in served:
        params = {p["name"]: p for p in resource.get("searchParam", [])}
        if not params:
            continue  # read only
        assert published.searched(resource["type"]), resource["type"]
        vendor_params = published.params(resource["type"])
        for name, param in params.items():
            assert name in vendor_params, (resource["type"], name)
            assert param["type"] == vendor_params[name]["type"], (resource["type"], name)
    assert published.source["commit"] and published.source["path"]


def test_epic_documents_its_observation_categories_and_the_fetch_reads_them(boxes):
    statement = get(boxes["epic"], "metadata").json()
    strategy = Strategy.from_capabilities(statement)
    assert strategy.documented("Observation", "category") == declared("epic").values(
        "Observation", "category"
    )
    assert strategy.needs_one_of("CarePlan", "category")  # "a required search parameter"


def refusal(response: requests.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("vendor", "path", "params", "why"),
    [
        # Epic lists functional-mental-status and survey among its categories, not exam
        ("epic", "Observation", {"patient": "p", "category": "exam"}, "'exam'"),
        ("epic", "Observation", {"patient": "p", "category": "survey,activity"}, "'activity'"),
        ("epic", "CarePlan", {"patient": "p"}, "requires a category"),
        ("epic", "Observation", {"patient": "p", "category": "survey", "_sort": "date"}, "_sort"),
        (
            "epic",
            "CarePlan",
            {"patient": "p", "category": "x", "_revinclude": "Provenance:agent"},
            "Provenance:agent",
        ),  # noqa: E501
        # Oracle Health serves Coverage by _id, patient or -encounter only
        ("oracle", "Coverage", {"beneficiary": "Patient/p"}, "beneficiary"),
        ("oracle", "Goal", {"patient": "p", "lifecycle-status": "active"}, "lifecycle-status"),
        ("oracle", "Procedure", {"encounter": "Encounter/e"}, "encounter"),
    ],
)
def test_a_vendor_refuses_what_its_statement_does_not_list(boxes, vendor, path, params, why):
    assert why in refusal(get(boxes[vendor], path, **params))
    assert get(boxes["full"], path, **params).status_code == 200  # the refusal is the vendor's


@pytest.mark.parametrize(
    ("vendor", "path", "params"),
    [
        ("epic", "Observation", {"patient": "p", "category": "functional-mental-status,survey"}),
        ("epic", "Coverage", {"beneficiary": "Patient/p"}),
        ("oracle", "Coverage", {"patient": "p"}),
        ("oracle", "CarePlan", {"patient": "p", "_revinclude": "Provenance:target"}),
    ],
)
def test_what_the_statement_lists_is_answered(boxes, vendor, path, params):
    response = get(boxes[vendor], path, **params)
    assert response.status_code == 200 and response.json()["resourceType"] == "Bundle"


def test_oracle_serves_no_practitioner_role(boxes):
    assert get(boxes["oracle"], "PractitionerRole", practitioner="x").status_code == 404
    assert get(boxes["epic"], "PractitionerRole", practitioner="x").status_code == 200


class Recording(FhirClient):
    """The app's FHIR client, noting each search's parameters."""

    def __init__(self, base: str, force: dict | None = None) -> None:
        super().__init__(base, session=make_session(retries=0))
        self.asked: list[tuple[str, dict]] = []
        self.force = force or {}

    def search(self, resource_type, params=None):
        params = dict(self.force.get(resource_type, params) or {})
        self.asked.append((resource_type, params))
        return super().search(resource_type, params)


def test_at_epic_a_visit_with_measures_is_not_missing_them_over_http():
    case = "epic-clean-enc-1"
    with running_sandbox("epic", data_dir=FIXTURES / "vendor", open_access=True) as ehr:
        client = Recording(ehr.fhir)
        fetched = fetch_visit(client, case)
    [asked] = [p for t, p in client.asked if t == "Observation"]
    assert asked["category"] == "functional-mental-status,survey"
    report = review_bundle(fetched, encounter_id=case)
    assert any(m.this_visit for m in report.visit.measures)
    assert not {"doc-no-objective-measure", "reading-incomplete"} & {
        f.rule for f in report.findings
    }
    assert not report.visit.unread


def overdue_at_oracle(force: dict | None = None):
    name = "episode_no_report_day_11"
    visit = f"{name.replace('_', '-')}-enc-1"
    with running_sandbox("oracle", open_access=True) as ehr:
        fetched = fetch_visit(Recording(ehr.fhir, force), visit)
    bundle = json.loads((FIXTURES / f"{name}.json").read_text())
    return review_bundle(fetched, encounter_id=visit), review_bundle(bundle, encounter_id=visit)


def test_at_oracle_the_payer_is_read_by_patient_and_an_overdue_report_is_found():
    over_http, from_file = overdue_at_oracle()
    assert over_http.visit.medicare and over_http.visit.payer == from_file.visit.payer
    assert "progress-report-overdue" in {f.rule for f in over_http.findings}
    assert not over_http.visit.unread


def test_at_oracle_a_refused_coverage_search_is_said_not_skipped():
    # What the fetch used to send (Coverage by beneficiary): Oracle refuses it, the payer is
    # unknown, and the Medicare rules are named as not checked rather than silently skipped.
    over_http, _ = overdue_at_oracle(force={"Coverage": {"beneficiary": "Patient/x"}})
    rules = {f.rule: f.message for f in over_http.findings}
    assert over_http.visit.payer is None and "progress-report-overdue" not in rules
    assert rules["reading-incomplete"].startswith(
        "The payer (Coverage) could not be read from Oracle Health: the payer's rules"
    )
    assert [(u.resource, u.ehr) for u in over_http.visit.unread] == [("Coverage", "Oracle Health")]


def test_a_practitioner_the_ehr_will_not_give_is_a_note_over_http():
    name = "units_exceed"
    visit = f"{name.replace('_', '-')}-enc-1"
    with running_sandbox("epic", open_access=True) as ehr:
        store = ehr.sandbox.store
        procedure = next(
            r for r in store.all("Procedure") if r["encounter"]["reference"] == f"Encounter/{visit}"
        )
        procedure["performer"] = [{"actor": {"reference": "Practitioner/gone"}}]
        store.put(procedure)
        fetched = fetch_visit(FhirClient(ehr.fhir, session=make_session(retries=0)), visit)
    report = review_bundle(fetched, encounter_id=visit)
    assert [(u.resource, u.part) for u in report.visit.unread] == [
        ("Practitioner", "Practitioner/gone")
    ]
    said = {f.rule: f.message for f in report.findings}["reading-incomplete"]
    assert said.startswith("Practitioner/gone could not be read from Epic: who furnished")


def test_epic_refuses_a_combined_search_and_the_fetch_asks_value_by_value():
    # An Epic site whose statement does not list its categories: the fetch asks for every
    # measure category at once, Epic refuses the search (exam is not one of its categories), and
    # the fetch asks again value by value, together.
    case = "epic-clean-enc-1"
    with running_sandbox("epic", data_dir=FIXTURES / "vendor", open_access=True) as ehr:
        client = Recording(ehr.fhir)
        strategy = Strategy.from_capabilities(client.capabilities())
        values = {k: v for k, v in strategy.values.items() if k != ("Observation", "category")}
        fetched = fetch_visit(client, case, strategy=replace(strategy, values=values))
    asked = [p["category"] for t, p in client.asked if t == "Observation"]
    wanted = measure_categories(replace(strategy, values=values))
    assert asked[0] == ",".join(wanted) and sorted(asked[1:]) == sorted(wanted)
    report = review_bundle(fetched, encounter_id=case)
    assert any(m.this_visit for m in report.visit.measures)  # survey was given
    [unread] = report.visit.unread
    refused = [c for c in wanted if c not in ("functional-mental-status", "survey")]
    assert (unread.resource, unread.part, unread.ehr) == (
        "Observation",
        f"category {', '.join(refused)}",
        "Epic",
    )
    # the measures were read: no check rested on the refused categories
    assert not {"doc-no-objective-measure", "reading-incomplete"} & {
        f.rule for f in report.findings
    }
