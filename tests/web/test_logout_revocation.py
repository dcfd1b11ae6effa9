"""Logout asks the EHR to revoke the session's tokens where it offers revocation (second security
review, INFO: the EHR's tokens stayed valid after logout): RFC 7009 at the SMART configuration's
``revocation_endpoint``, best effort, never in the way of the logout."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from tests.web import test_launch
from tests.web.test_launch import FIXTURES, ISS, serve_ehr

app = test_launch.app  # the fixture: the app with one registered EHR, ISS
REVOKE = "https://auth.test/revoke"


def launched(app, revocation: bool = True) -> tuple:
    """A launch through the mocked EHR (whose token response has a refresh token); returns the
    client and the review page's URL."""
    serve_ehr(json.loads((FIXTURES / "units_exceed.json").read_text()))
    config = {
        "authorization_endpoint": "https://auth.test/authorize",
        "token_endpoint": "https://auth.test/token",
        "code_challenge_methods_supported": ["S256"],
    }
    if revocation:
        config["revocation_endpoint"] = REVOKE
    responses.replace(responses.GET, f"{ISS}/.well-known/smart-configuration", json=config)
    responses.replace(
        responses.POST,
        "https://auth.test/token",
        json={
            "access_token": "at-1",
            "refresh_token": "rt-1",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "launch patient/Encounter.rs offline_access",
            "patient": "units-exceed-pat-1",
            "encounter": "units-exceed-enc-1",
        },
    )
    client = app.test_client()
    authorize = client.get(f"/launch?iss={ISS}&launch=abc").headers["Location"]
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    page = client.get(f"/callback?code=c1&state={state}").headers["Location"]
    return client, page


def logout(app, client, page: str):
    html = client.get(page).text
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    resp = client.post("/logout", data={"csrf_token": csrf})
    app.extensions["unitguard"].revoker.wait()
    return resp


def revocations() -> list[dict]:
    return [
        {k: v[0] for k, v in parse_qs(c.request.body).items()}
        for c in responses.calls
        if c.request.url == REVOKE
    ]


@responses.activate
def test_logout_revokes_the_refresh_then_the_access_token(app):
    responses.post(REVOKE, status=200)
    client, page = launched(app)
    resp = logout(app, client, page)
    assert resp.status_code == 200 and client.get(page).status_code in (401, 403)
    assert revocations() == [
        {"token": "rt-1", "token_type_hint": "refresh_token", "client_id": "ug"},
        {"token": "at-1", "token_type_hint": "access_token", "client_id": "ug"},
    ]


@pytest.mark.parametrize(
    "failure",
    [{"status": 503}, {"body": requests.ConnectionError("EHR down")}, {"status": 400}],
    ids=["503", "connection refused", "400"],
)
@responses.activate
def test_a_failed_revocation_never_stops_the_logout(app, failure, caplog):
    responses.post(REVOKE, **failure)
    client, page = launched(app)
    resp = logout(app, client, page)
    assert resp.status_code == 200 and client.get(page).status_code in (401, 403)
    assert "token revocation failed: refresh_token" in caplog.text
    assert "rt-1" not in caplog.text and "at-1" not in caplog.text


@responses.activate
def test_an_ehr_without_revocation_gets_no_request(app):
    client, page = launched(app, revocation=False)
    assert logout(app, client, page).status_code == 200
    assert revocations() == [] and not any("revoke" in c.request.url for c in responses.calls)
