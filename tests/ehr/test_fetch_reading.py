"""The fetch asks what the server's CapabilityStatement allows, retries a refused combined search
value by value, and leaves what it still cannot read as data the review does not decide from
(contract §2, "Unread is not absent")."""

from __future__ import annotations

import copy

from plugin.ehr import FetchStats, fetch_visit
from plugin.ehr.searches import measure_categories, round2_searches
from plugin.ehr.strategy import Strategy, documented_values
from plugin.review import review_bundle
from plugin.synthetic.visit import clean_visit
from sandbox.declared import declared
from smart_launch.errors import FhirRequestError
from tests.ehr.test_fetch import FakeEhr

# Epic's and Oracle Health's own words, from their published R4 statements (sandbox/vendors/).
EPIC_CATEGORY = declared("epic").params("Observation")["category"]["documentation"]
ORACLE_CONDITION = declared("oracle").params("Condition")["category"]["documentation"]


def review(bundle: dict):
    return review_bundle(bundle, encounter_id="enc-1")


def rules(bundle: dict) -> dict[str, str]:
    return {f.rule: f.message for f in review(bundle).findings}


def test_the_documented_values_are_read_from_the_vendors_own_words():
    assert documented_values(EPIC_CATEGORY) == declared("epic").values("Observation", "category")
    assert documented_values(ORACLE_CONDITION) == {
        "problem-list-item",
        "encounter-diagnosis",
        "health-concern",
    }
    assert documented_values("Refine a search by category.") is None


def test_observation_categories_are_those_the_server_lists():
    epic = Strategy.from_capabilities(FakeEhr(clean_visit().bundle(), "epic").capabilities())
    assert measure_categories(epic) == ["functional-mental-status", "survey"]
    searches = dict(round2_searches(epic, "enc-1", "pat-1", "2026-03-04"))
    assert searches["Observation"] == {
        "patient": "pat-1",
        "category": "functional-mental-status,survey",
    }
    # Oracle Health answers Observation by patient alone: no category is asked there.
    oracle = Strategy.from_capabilities(FakeEhr(clean_visit().bundle(), "oracle").capabilities())
    assert dict(round2_searches(oracle, "enc-1", "pat-1", "2026-03-04"))["Observation"] == {
        "patient": "pat-1"
    }


def test_coverage_goes_by_patient_where_beneficiary_is_not_declared():
    ehr = FakeEhr(clean_visit().bundle(), "oracle")
    fetched = fetch_visit(ehr, "enc-1")
    assert any(e["resource"]["resourceType"] == "Coverage" for e in fetched["entry"])
    report = review(fetched)
    assert report.visit.payer == "Medicare Part B" and report.visit.medicare
    assert not report.visit.unread


class Statement(FakeEhr):
    """A FakeEhr with its CapabilityStatement edited by ``change(statement)``."""

    def __init__(self, bundle: dict, profile: str, change) -> None:
        super().__init__(bundle, profile)
        self.change = change

    def capabilities(self) -> dict:
        statement = copy.deepcopy(super().capabilities())
        self.change({r["type"]: r for r in statement["rest"][0]["resource"]})
        return statement


def test_a_payer_the_server_serves_by_no_known_parameter_is_reading_incomplete():
    def coverage_by_id_only(resources):
        resources["Coverage"]["searchParam"] = [{"name": "_id"}]

    ehr = Statement(clean_visit().bundle(), "oracle", coverage_by_id_only)
    report = review(fetch_visit(ehr, "enc-1"))
    assert "search Coverage" not in ehr.calls
    assert report.visit.payer is None
    said = {f.rule: f.message for f in report.findings}["reading-incomplete"]
    assert said.startswith("The payer (Coverage) could not be read from Oracle Health")
    assert "the payer's rules (for Medicare: plan-of-care certification" in said


class RefusesCategories(Statement):
    """A server that answers Observation only with a category ("a required search parameter"),
    lists none, and refuses every category but ``accepted`` (a combined one with the rest)."""

    def __init__(self, bundle: dict, accepted: set[str]) -> None:
        def category_required(resources):
            resources["Observation"]["searchParam"] = [
                {"name": "patient"},
                {"name": "category", "documentation": "This is a required search parameter."},
            ]

        super().__init__(bundle, "full", category_required)
        self.profile = {**self.profile, "Observation": {"patient", "category"}}
        self.accepted = accepted
        self.asked: list[str] = []

    def search(self, rtype: str, params: dict):
        if rtype == "Observation":
            self.asked.append(params["category"])
            if not set(params["category"].split(",")) <= self.accepted:
                raise FhirRequestError(400, "http://ehr.test/fhir/Observation", "unknown category")
        return super().search(rtype, params)


def test_a_refused_combined_search_is_retried_value_by_value():
    ehr = RefusesCategories(clean_visit().bundle(), {"survey"})
    stats = FetchStats()
    fetched = fetch_visit(ehr, "enc-1", stats=stats)
    wanted = ["functional-mental-status", "survey", "exam", "activity", "therapy"]
    assert ehr.asked[0].split(",")[:5] == wanted
    assert sorted(ehr.asked[1:]) == sorted(ehr.asked[0].split(","))  # then one by one
    # the values are asked together: one more round trip than a search answered at once
    accepting = RefusesCategories(clean_visit().bundle(), set(ehr.asked[0].split(",")))
    unrefused = FetchStats()
    fetch_visit(accepting, "enc-1", stats=unrefused)
    assert stats.rounds == unrefused.rounds + 1
    assert stats.requests == unrefused.requests + len(ehr.asked) - 1
    observations = [e for e in fetched["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert len(observations) == 2  # the survey measures: this visit's and the earlier one
    report = review(fetched)
    [unread] = report.visit.unread
    assert unread.resource == "Observation"
    assert (
        unread.part
        == "category functional-mental-status, exam, activity, therapy, functional-status"
    )
    # the measures were read: nothing rests on the refused categories
    assert not {"doc-no-objective-measure", "reading-incomplete"} & set(rules(fetched))


def test_a_search_refused_value_by_value_counts_as_refused():
    bundle = clean_visit().bundle()
    ehr = RefusesCategories(bundle, set())
    fetched = fetch_visit(ehr, "enc-1")
    report = review(fetched)
    assert [(u.resource, u.part) for u in report.visit.unread] == [("Observation", "")]
    found = rules(fetched)
    assert "doc-no-objective-measure" not in found
    assert found["reading-incomplete"] == (
        "Observations could not be read: objective measures not checked"
    )
    # Guard: the same visit with no Observation read and nothing refused lacks the measure.
    ehr = RefusesCategories(bundle, set(ehr.asked[0].split(",")))
    ehr.resources = [r for r in ehr.resources if r["resourceType"] != "Observation"]
    assert "doc-no-objective-measure" in rules(fetch_visit(ehr, "enc-1"))


class Forbids(FakeEhr):
    """Answers a read of one Practitioner with the FHIR client's 403 (SMART scopes)."""

    def read(self, rtype: str, rid: str) -> dict:
        if (rtype, rid) == ("Practitioner", "pt"):
            raise FhirRequestError(403, f"http://ehr.test/fhir/{rtype}/{rid}", "forbidden")
        return super().read(rtype, rid)


def test_a_refused_practitioner_read_is_a_note_not_a_failed_fetch():
    fetched = fetch_visit(Forbids(clean_visit().bundle(), "epic"), "enc-1")
    report = review(fetched)
    assert [(u.resource, u.part) for u in report.visit.unread] == [
        ("Practitioner", "Practitioner/pt")
    ]
    assert any(
        "Practitioner/pt could not be read (403: forbidden)" in n for n in report.visit.notes
    )
    said = {f.rule: f.message for f in report.findings}["reading-incomplete"]
    assert said.startswith("Practitioner/pt could not be read from Epic: who furnished")


def test_a_read_without_any_answer_still_fails():
    class Silent(FakeEhr):
        def read(self, rtype, rid):
            if rtype == "Practitioner":
                raise FhirRequestError(None, f"http://ehr.test/fhir/{rtype}/{rid}", "timed out")
            return super().read(rtype, rid)

    try:
        fetch_visit(Silent(clean_visit().bundle(), "epic"), "enc-1")
    except FhirRequestError as exc:
        assert "timed out" in str(exc)
    else:
        raise AssertionError("a read with no answer must fail the fetch, as a search does")
