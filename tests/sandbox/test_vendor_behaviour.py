"""The sandbox's epic and oracle profiles behave like the vendors' FHIR R4 servers (contract
section 5; ehr.md): valid CapabilityStatements, the vendors' refusals, OperationOutcome errors,
vread and history, OpenID discovery, and the standalone patient picker."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlparse

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from joserfc import jwt
from joserfc.jwk import KeySet
from pydantic import ValidationError

from plugin.ehr import Strategy
from sandbox.app import create_app
from sandbox.auth import Client
from sandbox.seed import build_sandbox

BASE = "http://sandbox.test"
FHIR = f"{BASE}/fhir"
SEARCH_PARAM_TYPES = {"number", "date", "string", "token", "reference", "composite", "quantity"}
SEARCH_PARAM_TYPES |= {"uri", "special"}
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
FHIR_JSON = "application/fhir+json"


def client_for(profile: str, open_access: bool = True):
    box = build_sandbox(profile, open_access=open_access, base_url=BASE)
    return box, create_app(box, BASE).test_client()


def outcome_of(response, status: int) -> str:
    """The diagnostics of an OperationOutcome answered with ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == FHIR_JSON
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


# --- 1. CapabilityStatements -------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["epic", "oracle", "full"])
def test_capability_statement_is_valid_r4_with_typed_params_and_smart_uris(profile):
    _, http = client_for(profile)
    statement = http.get("/fhir/metadata").get_json()
    CapabilityStatement.model_validate(statement)  # raises on any error
    rest = statement["rest"][0]
    params = [p for r in rest["resource"] for p in r.get("searchParam", [])]
    assert params and all(p.get("type") in SEARCH_PARAM_TYPES for p in params)
    uris = next(e for e in rest["security"]["extension"] if e["url"] == OAUTH_URIS)
    named = {e["url"]: e["valueUri"] for e in uris["extension"]}
    assert named == {"authorize": f"{BASE}/oauth/authorize", "token": f"{BASE}/oauth/token"}
    codes = {c["code"] for s in rest["security"]["service"] for c in s["coding"]}
    assert "SMART-on-FHIR" in codes
    # the fetch recognises the vendor it imitates
    assert Strategy.from_capabilities(statement).vendor == (None if profile == "full" else profile)


def test_an_untyped_search_param_is_what_the_validation_catches():
    _, http = client_for("epic")
    statement = http.get("/fhir/metadata").get_json()
    del statement["rest"][0]["resource"][0]["searchParam"][0]["type"]
    with pytest.raises(ValidationError):
        CapabilityStatement.model_validate(statement)


# --- 2. The vendors' refusals ------------------------------------------------------------------

PATIENT = "units-exceed-pat-1"
CLOSED = [("date", "ge2026-01-01T00:00:00Z"), ("date", "lt2027-01-01T00:00:00Z")]


def test_oracle_refuses_a_prefixed_date_without_a_time():
    _, http = client_for("oracle")
    why = outcome_of(
        http.get("/fhir/Encounter", query_string={"patient": PATIENT, "date": "ge2026-03-04"}), 400
    )
    assert "time" in why
    ok = http.get(
        "/fhir/Encounter", query_string={"patient": PATIENT, "date": "ge2026-01-01T00:00:00Z"}
    )
    assert ok.status_code == 200 and ok.get_json()["total"] >= 1
    # Procedure and Observation want a closed range, with times
    open_range = [("patient", PATIENT), ("date", "ge2026-01-01T00:00:00Z")]
    assert "closed range" in outcome_of(http.get("/fhir/Procedure", query_string=open_range), 400)
    found = http.get("/fhir/Procedure", query_string=[("patient", PATIENT), *CLOSED])
    assert found.status_code == 200 and found.get_json()["total"] >= 1
    outside = [("patient", PATIENT), ("date", "ge2027-01-01T00:00:00Z"), CLOSED[1]]
    assert http.get("/fhir/Procedure", query_string=outside).get_json()["total"] == 0


def test_oracle_refuses_charge_items_without_the_billable_status():
    _, http = client_for("oracle")
    context = {"context": "Encounter/oracle-chargeitem-enc-1"}
    assert "-status" in outcome_of(http.get("/fhir/ChargeItem", query_string=context), 400)
    assert "requires" in outcome_of(
        http.get("/fhir/ChargeItem", query_string={"-status": "billable"}), 400
    )
    found = http.get("/fhir/ChargeItem", query_string={**context, "-status": "billable"})
    assert found.status_code == 200 and found.get_json()["total"] == 2


def test_epic_refuses_observations_by_patient_without_category_or_code():
    _, http = client_for("epic")
    why = outcome_of(http.get("/fhir/Observation", query_string={"patient": PATIENT}), 400)
    assert "category" in why
    found = http.get(
        "/fhir/Observation",
        query_string={"patient": PATIENT, "category": "functional-mental-status,survey"},
    ).get_json()
    assert [e for e in found["entry"] if e["search"]["mode"] == "match"]
    wrong = http.get(
        "/fhir/Observation", query_string={"patient": PATIENT, "category": "laboratory"}
    )
    assert not [e for e in wrong.get_json()["entry"] if e["search"]["mode"] == "match"]


@pytest.mark.parametrize(
    ("profile", "path", "query"),
    [
        ("epic", "/fhir/Encounter", {"patient": PATIENT, "date": "ge2026-03-04"}),
        ("full", "/fhir/ChargeItem", {"context": "Encounter/oracle-chargeitem-enc-1"}),
        ("oracle", "/fhir/Observation", {"patient": PATIENT}),
        ("full", "/fhir/Observation", {"patient": PATIENT}),
    ],
)
def test_a_refusal_belongs_to_its_vendor_only(profile, path, query):
    _, http = client_for(profile)
    assert http.get(path, query_string=query).status_code == 200


# --- 3. Every error is an OperationOutcome -----------------------------------------------------


@pytest.mark.parametrize("profile", ["epic", "oracle"])
def test_errors_are_operation_outcomes(profile):
    _, http = client_for(profile)
    outcome_of(http.get("/fhir/Nonsense"), 404)
    outcome_of(http.get("/fhir/Nonsense/1"), 404)
    outcome_of(http.get("/fhir/Encounter/no-such-visit"), 404)
    outcome_of(http.get("/fhir/Encounter/units-exceed-enc-1/too/deep/here"), 404)
    outcome_of(http.delete("/fhir/Encounter/units-exceed-enc-1"), 405)
    outcome_of(http.patch("/fhir/Encounter/units-exceed-enc-1"), 405)
    outcome_of(http.post("/fhir/Task", json={"resourceType": "Task"}), 405)
    xml = {"Accept": "application/fhir+xml"}
    outcome_of(http.get("/fhir/Encounter/units-exceed-enc-1", headers=xml), 406)
    outcome_of(http.get("/fhir/metadata", query_string={"_format": "xml"}), 406)
    outcome_of(
        http.get("/fhir/Encounter/units-exceed-enc-1", query_string={"_count": "x"}), 200
    ) if False else None
    outcome_of(http.get("/fhir/Encounter", query_string={"_count": "many"}), 400)
    # JSON asked for in any of its spellings is served
    for accept in (FHIR_JSON, "application/json", "*/*", "text/html,*/*;q=0.8"):
        assert http.get("/fhir/metadata", headers={"Accept": accept}).status_code == 200
    assert http.get("/fhir/metadata", query_string={"_format": "json"}).status_code == 200


# --- 4. vread, _history, Location --------------------------------------------------------------


def test_vread_history_and_a_create_location_that_answers():
    _, http = client_for("full")
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    created = http.post("/fhir/Task", json=task)
    assert created.status_code == 201
    location = created.headers["Location"]
    assert location.startswith(FHIR)
    first = http.get(location.removeprefix(BASE))
    assert first.status_code == 200 and first.get_json()["id"] == created.get_json()["id"]
    url = f"/fhir/Task/{created.get_json()['id']}"
    updated = http.put(url, json=dict(first.get_json(), status="completed"))
    assert updated.status_code == 200
    assert http.get(f"{url}/_history/1").get_json()["status"] == "requested"
    v2 = http.get(f"{url}/_history/2")
    assert v2.get_json()["status"] == "completed" and v2.headers["ETag"] == 'W/"2"'
    history = http.get(f"{url}/_history").get_json()
    assert history["type"] == "history" and history["total"] == 2
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert history["entry"][1]["request"]["method"] == "POST"
    outcome_of(http.get(f"{url}/_history/9"), 404)
    outcome_of(http.get(f"{url}/_history/one"), 404)
    outcome_of(http.get("/fhir/Task/nope/_history"), 404)


def test_history_is_guarded_like_read():
    _, http = client_for("epic", open_access=False)
    outcome_of(http.get("/fhir/Encounter/units-exceed-enc-1/_history"), 401)
    outcome_of(http.get("/fhir/Encounter/units-exceed-enc-1/_history/1"), 401)


# --- 5 and 6. OpenID Connect and the standalone launch ------------------------------------------


def pkce(verifier: str = "v" * 64) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def test_openid_discovery_and_smart_configuration():
    _, http = client_for("epic")
    for path in ("/.well-known/openid-configuration", "/fhir/.well-known/openid-configuration"):
        config = http.get(path).get_json()
        assert config["issuer"] == FHIR
        assert config["authorization_endpoint"] == f"{BASE}/oauth/authorize"
        assert config["token_endpoint"] == f"{BASE}/oauth/token"
        assert config["jwks_uri"] == f"{BASE}/oauth/jwks"
    smart = http.get("/fhir/.well-known/smart-configuration").get_json()
    assert "sso-openid-connect" in smart["capabilities"]
    keys = http.get(smart["jwks_uri"].removeprefix(BASE)).get_json()
    assert keys["keys"] and "d" not in keys["keys"][0]


def test_standalone_launch_picks_a_patient_and_signs_an_id_token():
    box, http = client_for("oracle", open_access=False)
    box.grants.register(Client("app", ("http://app.test/cb",)))
    args = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": "http://app.test/cb",
        "scope": "launch/patient launch/encounter openid fhirUser patient/*.rs",
        "state": "st",
        "aud": FHIR,
        "code_challenge": pkce(),
        "code_challenge_method": "S256",
    }
    picker = http.get("/oauth/authorize", query_string=args)
    assert picker.status_code == 200
    page = picker.get_data(as_text=True)
    offered = re.findall(r'data-patient="([^"]+)"', page)
    assert "kx-missing-pat-1" in offered and "units-exceed-pat-1" in offered
    assert 'name="state" value="st"' in page  # the request travels with the choice
    refused = http.post("/oauth/authorize", data={**args, "sandbox_patient": "nobody"})
    assert refused.status_code == 400
    chosen = http.post("/oauth/authorize", data={**args, "sandbox_patient": "kx-missing-pat-1"})
    assert chosen.status_code == 302
    back = parse_qs(urlparse(chosen.headers["Location"]).query)
    assert back["state"] == ["st"]
    token = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": "http://app.test/cb",
            "client_id": "app",
            "code_verifier": "v" * 64,
        },
    ).get_json()
    assert token["patient"] == "kx-missing-pat-1"
    assert token["encounter"] == "kx-missing-enc-1"  # the patient's latest visit
    keys = KeySet.import_key_set(http.get("/oauth/jwks").get_json())
    claims = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == FHIR and claims["fhirUser"].startswith(f"{FHIR}/Practitioner/")
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert http.get("/fhir/Patient/kx-missing-pat-1", headers=auth).status_code == 200
    outcome_of(http.get("/fhir/Patient/units-exceed-pat-1", headers=auth), 404)


@pytest.mark.parametrize("profile", ["epic", "oracle", "full"])
def test_note_text_is_readable_as_binary(profile):
    box, http = client_for(profile)
    box.store.put({"resourceType": "Binary", "id": "note-1", "contentType": "text/plain"})
    statement = http.get("/fhir/metadata").get_json()
    binary = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Binary")
    assert {"code": "read"} in binary["interaction"]
    assert http.get("/fhir/Binary/note-1").get_json()["contentType"] == "text/plain"


# --- The episode's searches (docs/episode.md) ---------------------------------------------------


def test_epic_wants_a_careplan_category_and_includes_provenance_only_by_revinclude():
    _, http = client_for("epic")
    why = outcome_of(http.get("/fhir/CarePlan", query_string={"patient": PATIENT}), 400)
    assert "category" in why
    found = http.get(
        "/fhir/CarePlan",
        query_string={
            "patient": PATIENT,
            "category": "assess-plan",
            "_revinclude": "Provenance:target",
        },
    ).get_json()
    assert [e for e in found["entry"] if e["resource"]["resourceType"] == "CarePlan"]
    # Provenance is read only at Epic: never searched
    outcome_of(http.get("/fhir/Provenance", query_string={"target": "CarePlan/x"}), 404)
    statement = http.get("/fhir/metadata").get_json()
    kinds = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert kinds["CarePlan"]["searchRevInclude"] == ["Provenance:target"]
    assert {i["code"] for i in kinds["Provenance"]["interaction"]} == {"read", "vread"}


def test_oracle_serves_no_communication_by_patient_and_provenance_only_by_target():
    _, http = client_for("oracle")
    why = outcome_of(http.get("/fhir/Communication", query_string={"patient": PATIENT}), 400)
    assert "patient" in why  # not a Communication search parameter at Oracle
    inbox = {"category": "alert", "recipient": "Practitioner/x"}
    why = outcome_of(http.get("/fhir/Communication", query_string=inbox), 400)
    assert "-email-status" in why and "received" in why
    why = outcome_of(http.get("/fhir/Provenance"), 400)
    assert "target" in why
    ok = http.get("/fhir/Provenance", query_string={"target": "CarePlan/units-exceed-poc-1"})
    assert ok.status_code == 200
    plans = http.get("/fhir/CarePlan", query_string={"patient": PATIENT}).get_json()
    assert plans["total"] >= 1
    open_range = {"patient": PATIENT, "date": "ge2026-01-01T00:00:00Z"}
    assert "closed" in outcome_of(http.get("/fhir/CarePlan", query_string=open_range), 400)
    statement = http.get("/fhir/metadata").get_json()
    assert "EpisodeOfCare" not in {r["type"] for r in statement["rest"][0]["resource"]}


def test_the_full_profile_serves_the_episode_searches():
    _, http = client_for("full")
    for path, query in (
        ("/fhir/CarePlan", {"patient": PATIENT}),
        ("/fhir/Communication", {"patient": PATIENT}),
        ("/fhir/Provenance", {"target": "CarePlan/units-exceed-poc-1"}),
        ("/fhir/ServiceRequest", {"patient": PATIENT}),
    ):
        assert http.get(path, query_string=query).status_code == 200, path
