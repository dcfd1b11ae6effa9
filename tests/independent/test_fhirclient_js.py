"""SMART's JavaScript client (npm ``fhirclient``, its Node adapter) launches against every
sandbox profile: js/launch.js runs a tiny app whose /launch calls ``authorize()`` and whose
/callback calls ``ready()``, and plays the browser in between (the sandbox's authorize page and
patient picker). The client discovers the endpoints from ``.well-known/smart-configuration``,
uses PKCE, reads the launch's Patient and Encounter, refreshes its token as a public client,
and pages through a search."""

from __future__ import annotations

import json
import os

import pytest
from joserfc.jwk import ECKey, RSAKey

from tests.independent.clients import free_port, node
from tests.loopback import running_sandbox

CLIENT_ID = "fhirclient-js"  # the client id js/launch.js uses
PATIENT, ENCOUNTER = "kx-missing-pat-1", "kx-missing-enc-003"  # 17 visits: the search pages


def launch(ehr, how: str, **credentials) -> tuple[int, dict]:
    port = free_port()
    ehr.register(CLIENT_ID, f"http://127.0.0.1:{port}/callback", **credentials)
    extra = ["--launch", ehr.launch(ENCOUNTER, PATIENT)] if how == "ehr" else ["--pick", PATIENT]
    return node("launch.js", ehr.fhir, str(port), *extra)


@pytest.mark.parametrize("how", ["standalone", "ehr"])
@pytest.mark.parametrize("profile", ["full", "epic", "oracle"])
def test_fhirclient_js_launches_and_reads_patient_and_encounter(profile, how):
    with running_sandbox(profile) as ehr:
        status, result = launch(ehr, how)
    assert status == 0 and "error" not in result, result
    assert result["serverUrl"] == ehr.fhir
    assert result["authorizeUri"] == f"{ehr.base_url}/oauth/authorize"
    assert result["tokenUri"] == f"{ehr.base_url}/oauth/token"
    assert result["pkce"] is True
    assert result["patient"] == {"resourceType": "Patient", "id": PATIENT}
    assert result["encounter"]["resourceType"] == "Encounter"
    if how == "ehr":
        assert result["encounter"]["id"] == ENCOUNTER
        assert not any("picked" in step for step in result["visited"])
    else:
        assert any(step.endswith(f"(picked {PATIENT})") for step in result["visited"])
    assert result["user"] == "Practitioner/pt"  # from the id_token's fhirUser claim
    assert result["userResource"] == {"resourceType": "Practitioner", "id": "pt"}
    assert {"access_token", "id_token", "refresh_token", "patient"} <= set(
        result["tokenResponseKeys"]
    )
    assert result["refreshed"] is True
    assert result["patientAfterRefresh"] == result["patient"]
    assert (result["pages"], result["total"], result["searchedEncounters"]) == (4, 17, 17)
    outcome_entries = {"OperationOutcome"} if profile == "epic" else set()
    assert set(result["searchedTypes"]) == {"Encounter"} | outcome_entries


def test_fhirclient_js_reports_an_unregistered_redirect():
    """A launch the sandbox refuses ends in an error, not a token: the test can fail."""
    with running_sandbox("oracle") as ehr:
        port = free_port()
        ehr.register(CLIENT_ID, f"http://127.0.0.1:{port}/elsewhere")
        status, result = node("launch.js", ehr.fhir, str(port), "--pick", PATIENT)
    assert status == 1
    assert "unregistered redirect_uri" in result["error"]


@pytest.mark.parametrize(
    ("profile", "auth"), [("oracle", "secret"), ("epic", "ES384"), ("full", "RS384")]
)
def test_fhirclient_js_as_a_confidential_client(profile, auth, monkeypatch):
    """client_secret_basic, and private_key_jwt with the two algorithms SMART names: the code
    exchange works. fhirclient 2.6 sends a private_key_jwt client's refresh without any client
    authentication, and the sandbox refuses it as a real EHR must."""
    if auth == "secret":
        credentials = {"secret": "s3cret-for-the-sandbox"}
        monkeypatch.setenv("SMART_CLIENT_SECRET", credentials["secret"])
    else:
        key = (
            ECKey.generate_key("P-384", parameters={"kid": "k1", "alg": auth})
            if auth == "ES384"
            else RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": auth})
        )
        credentials = {"jwks": {"keys": [key.as_dict(private=False)]}}
        monkeypatch.setenv("SMART_PRIVATE_JWK", json.dumps(key.as_dict(private=True)))
    assert os.environ.get("SMART_CLIENT_SECRET") or os.environ.get("SMART_PRIVATE_JWK")
    with running_sandbox(profile) as ehr:
        status, result = launch(ehr, "ehr", **credentials)
    assert status == 0 and "error" not in result, result
    assert result["patient"] == {"resourceType": "Patient", "id": PATIENT}
    assert result["encounter"] == {"resourceType": "Encounter", "id": ENCOUNTER}
    if auth == "secret":
        assert result["refreshed"] is True
    else:
        assert result["refreshed"] is False and "invalid_client" in result["refreshError"]
