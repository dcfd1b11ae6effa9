"""A full EHR launch through the app: /launch -> authorize -> /callback -> the review page."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from plugin.web import create_app
from plugin.web.settings import Settings
from smart_launch import load_registry

ISS = "https://ehr.test/fhir"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def app(tmp_path):
    (tmp_path / "ehrs.toml").write_text(
        f'[[ehr]]\nname = "test"\nissuer = "{ISS}"\nclient_id = "ug"\n'
        'scopes = "launch openid fhirUser patient/Encounter.rs"\n'
    )
    settings = Settings(
        testing=True,
        task_db="sqlite://",
        outbox_db="sqlite://",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
    ).validated()
    return create_app(settings, registry=load_registry(tmp_path / "ehrs.toml"))


def serve_ehr(bundle: dict, token: str = "at-1") -> None:
    """The EHR's discovery, token endpoint and a FHIR server over the bundle's resources."""
    responses.get(
        f"{ISS}/.well-known/smart-configuration",
        json={
            "authorization_endpoint": "https://auth.test/authorize",
            "token_endpoint": "https://auth.test/token",
            "code_challenge_methods_supported": ["S256"],
        },
    )
    responses.post(
        "https://auth.test/token",
        json={
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "launch patient/Encounter.rs",
            "patient": "units-exceed-pat-1",
            "encounter": "units-exceed-enc-1",
        },
    )
    resources = [e["resource"] for e in bundle["entry"]]
    responses.get(
        f"{ISS}/metadata",
        json={
            "resourceType": "CapabilityStatement",
            "rest": [
                {
                    "resource": [
                        {"type": t, "searchParam": [{"name": "encounter"}, {"name": "patient"}]}
                        for t in (
                            "Encounter",
                            "Procedure",
                            "Observation",
                            "Goal",
                            "Condition",
                            "DocumentReference",
                            "Coverage",
                            "Practitioner",
                            "Claim",
                        )
                    ]
                }
            ],
        },
    )
    responses.get(
        f"{ISS}/Encounter/units-exceed-enc-1",
        json=next(
            r
            for r in resources
            if r["resourceType"] == "Encounter" and r["id"] == "units-exceed-enc-1"
        ),
    )
    for rtype in (
        "Procedure",
        "Observation",
        "Goal",
        "Condition",
        "DocumentReference",
        "Coverage",
        "Encounter",
        "Claim",
    ):
        found = [r for r in resources if r["resourceType"] == rtype]
        responses.get(
            f"{ISS}/{rtype}",
            json={
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r} for r in found],
            },
        )
    for r in resources:
        if r["resourceType"] == "Practitioner":
            responses.get(f"{ISS}/Practitioner/{r['id']}", json=r)


@responses.activate
def test_launch_to_review_page(app):
    serve_ehr(json.loads((FIXTURES / "units_exceed.json").read_text()))
    client = app.test_client()
    resp = client.get(f"/launch?iss={ISS}&launch=abc")
    assert resp.status_code == 302
    authorize = urlsplit(resp.headers["Location"])
    query = parse_qs(authorize.query)
    assert query["aud"] == [ISS] and query["launch"] == ["abc"]
    # the browser brings the launch's binding cookie back (required: see test_security_findings)
    back = client.get(f"/callback?code=c1&state={query['state'][0]}")
    assert back.status_code == 302
    assert "/review/units-exceed-enc-1" in back.headers["Location"]
    page = client.get(back.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-rule="units-exceed-time"' in html
    assert "at-1" not in html
    fhir_calls = [
        c
        for c in responses.calls
        if c.request.url.startswith(ISS + "/") and ".well-known" not in c.request.url
    ]
    assert all(c.request.headers.get("Authorization") == "Bearer at-1" for c in fhir_calls)
    replay = client.get(f"/callback?code=c1&state={query['state'][0]}")
    assert replay.status_code == 401  # state is single-use


def test_unknown_issuer_is_refused_without_any_request(app):
    with responses.RequestsMock() as mock:  # any outgoing request would fail the test
        resp = app.test_client().get("/launch?iss=https://evil.test/fhir&launch=x")
        assert len(mock.calls) == 0
    assert resp.status_code == 400
    assert "not registered" in resp.get_data(as_text=True)


def test_callback_without_state_or_with_error(app):
    client = app.test_client()
    assert client.get("/callback?code=c").status_code == 401
    resp = client.get("/callback?error=access_denied&error_description=Denied+by+user")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "refused or cancelled at the EHR" in page
    assert "Denied by user" not in page  # the query string's words are never shown


def test_frame_ancestors_are_the_registered_ehr_origins(app):
    csp = app.test_client().get("/healthz").headers["Content-Security-Policy"]
    assert "frame-ancestors https://ehr.test" in csp


@responses.activate
def test_second_page_load_sends_no_request_to_the_ehr(app):
    serve_ehr(json.loads((FIXTURES / "units_exceed.json").read_text()))
    client = app.test_client()
    authorize = client.get(f"/launch?iss={ISS}&launch=abc").headers["Location"]
    query = parse_qs(urlsplit(authorize).query)
    page_url = client.get(f"/callback?code=c1&state={query['state'][0]}").headers["Location"]
    assert client.get(page_url).status_code == 200
    after_first = len(responses.calls)
    assert after_first > 10  # reading a visit takes many FHIR requests
    second = client.get(page_url)
    assert second.status_code == 200 and 'data-rule="units-exceed-time"' in second.text
    assert len(responses.calls) == after_first
    client.get(page_url + "&refresh=1")
    assert len(responses.calls) > after_first
