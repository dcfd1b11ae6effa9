"""Who may see what (contract section 5): the coder list and role codes, the launch without
patient context and the standalone sign-in at /login, through the app with a mocked EHR."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from joserfc import jwt
from joserfc.jwk import RSAKey

from plugin.web import create_app
from plugin.web.roles import is_coder, relative_reference, role_codes
from plugin.web.settings import Settings
from smart_launch import load_registry
from smart_launch.registry import RegistryError

ISS = "https://ehr.test/fhir"
ROLE = {"coding": [{"system": "https://example.org/roles", "code": "coding-specialist"}]}


KEY = RSAKey.generate_key(2048, parameters={"kid": "ehr-signing"})


def id_token(fhir_user: str) -> str:
    """An id_token as the EHR signs it (its key served at the jwks_uri below)."""
    now = int(time.time())
    claims = {"iss": ISS, "aud": "ug", "sub": "x", "fhirUser": fhir_user, "iat": now}
    return jwt.encode({"alg": "RS256", "kid": "ehr-signing"}, {**claims, "exp": now + 300}, KEY)


@pytest.fixture
def app(tmp_path):
    (tmp_path / "ehrs.toml").write_text(
        f'[[ehr]]\nname = "Test EHR"\nissuer = "{ISS}"\nclient_id = "ug"\n'
        'scopes = "launch openid fhirUser patient/*.rs user/PractitionerRole.rs"\n'
        'coders = ["Practitioner/coder-1"]\ncoder_role_codes = ["coding-specialist"]\n'
    )
    settings = Settings(
        testing=True,
        task_db="sqlite://",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
    ).validated()
    return create_app(settings, registry=load_registry(tmp_path / "ehrs.toml"))


def serve_auth(user: str, patient: str | None = None, roles: list[dict] | None = None) -> None:
    responses.get(
        f"{ISS}/.well-known/smart-configuration",
        json={
            "authorization_endpoint": "https://auth.test/authorize",
            "token_endpoint": "https://auth.test/token",
            "code_challenge_methods_supported": ["S256"],
            "issuer": ISS,
            "jwks_uri": "https://auth.test/jwks",
        },
    )
    responses.get("https://auth.test/jwks", json={"keys": [KEY.as_dict(private=False)]})
    body = {
        "access_token": "at-1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid fhirUser",
        "id_token": id_token(f"{ISS}/{user}"),
    }
    if patient:
        body.update(patient=patient, encounter="enc-1")
    responses.post("https://auth.test/token", json=body)
    responses.get(
        f"{ISS}/{user}",
        json={
            "resourceType": user.split("/")[0],
            "id": user.split("/")[1],
            "name": [{"given": ["Casey"], "family": "Coder"}],
        },
    )
    responses.get(
        f"{ISS}/PractitionerRole",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in roles or []],
        },
    )


def launch_and_return(client, path: str):
    resp = client.get(path)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    return query, client.get(f"/callback?code=c1&state={query['state'][0]}")


@responses.activate
def test_launch_without_patient_by_a_listed_coder_opens_the_queue(app):
    serve_auth("Practitioner/coder-1")
    client = app.test_client()
    query, back = launch_and_return(client, f"/launch?iss={ISS}&launch=menu")
    assert query["launch"] == ["menu"]
    assert back.status_code == 302 and back.headers["Location"].startswith("/queue?sid=")
    page = client.get(back.headers["Location"])
    assert page.status_code == 200 and 'data-role="coder"' in page.get_data(as_text=True)
    assert "Casey Coder" in page.get_data(as_text=True)


@responses.activate
def test_standalone_login_asks_for_identity_not_patient(app):
    serve_auth("Practitioner/coder-2", roles=[{"resourceType": "PractitionerRole", "code": [ROLE]}])
    client = app.test_client()
    query, back = launch_and_return(client, f"/login?iss={ISS}")
    scopes = query["scope"][0].split()
    assert {"openid", "fhirUser"} <= set(scopes)
    assert "launch" not in scopes and not any(s.startswith(("launch/", "patient/")) for s in scopes)
    assert "launch" not in query
    assert back.headers["Location"].startswith("/queue?sid=")  # a coder by role code
    searched = [c.request.url for c in responses.calls if "PractitionerRole" in c.request.url]
    assert searched and "practitioner=Practitioner%2Fcoder-2" in searched[0]


@responses.activate
def test_a_user_who_is_not_a_coder_is_refused_the_queue(app):
    serve_auth("Practitioner/frontdesk", roles=[{"resourceType": "PractitionerRole", "code": []}])
    _, back = launch_and_return(app.test_client(), f"/login?iss={ISS}")
    assert back.status_code == 403
    assert "coder list" in back.get_data(as_text=True)


@responses.activate
def test_a_patient_launch_by_a_coder_is_still_a_clinician_session(app):
    serve_auth("Practitioner/coder-1", patient="pat-1")
    client = app.test_client()
    _, back = launch_and_return(client, f"/launch?iss={ISS}&launch=chart")
    assert "/review/enc-1" in back.headers["Location"]
    sid = parse_qs(urlsplit(back.headers["Location"]).query)["sid"][0]
    assert client.get(f"/queue?sid={sid}").status_code == 403


def test_login_without_an_issuer_goes_to_the_landing_page(app):
    client = app.test_client()
    resp = client.get("/login")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/")
    landing = client.get("/").get_data(as_text=True)
    assert "Sign in with Test EHR" in landing and f'data-iss="{ISS}"' in landing
    assert client.get("/login?iss=https://evil.example/fhir").status_code == 400


def test_roles_from_references_lists_and_role_codes():
    assert relative_reference(f"{ISS}/Practitioner/a", ISS) == "Practitioner/a"
    assert relative_reference("Practitioner/a", ISS) == "Practitioner/a"
    assert relative_reference("https://other.test/fhir/Practitioner/a", ISS) is None
    assert relative_reference("", ISS) is None and relative_reference("garbage", ISS) is None
    calls = []

    def roles_of(user):
        calls.append(user)
        return [{"code": [ROLE]}, {"active": False, "code": [{"coding": [{"code": "other"}]}]}]

    assert is_coder("Practitioner/c", ["Practitioner/c"], [], roles_of) and not calls
    assert is_coder("Practitioner/d", [], ["coding-specialist"], roles_of)
    assert not is_coder("Practitioner/d", [], ["other"], roles_of)  # that role is inactive
    assert not is_coder("Patient/p", [], ["coding-specialist"], roles_of)
    assert not is_coder(None, ["Practitioner/c"], [], roles_of)
    assert not is_coder("Practitioner/e", [], [], roles_of)
    assert role_codes([{"code": [ROLE]}]) == {"coding-specialist"}


@pytest.mark.parametrize(
    "line", ['coders = "Practitioner/a"', "coders = [1]", 'coder_role_codes = [""]']
)
def test_registry_refuses_a_malformed_coder_list(tmp_path, line):
    path = tmp_path / "ehrs.toml"
    path.write_text(f'[[ehr]]\nname = "t"\nissuer = "{ISS}"\nclient_id = "c"\n{line}\n')
    with pytest.raises(RegistryError, match="must be a list of strings"):
        load_registry(path)
