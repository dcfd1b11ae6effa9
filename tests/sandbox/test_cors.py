"""The sandbox honours the ``cors: true`` its CapabilityStatement claims: browser apps on other
origins can discover, get tokens and call the FHIR API (tests/independent runs SMART's
JavaScript client in chromium for the whole flow; these check the headers)."""

from __future__ import annotations

import pytest

from sandbox.app import create_app
from sandbox.seed import build_sandbox

BASE = "http://sandbox.test"
APP = "http://app.test:3000"


def client(profile: str = "epic"):
    box = build_sandbox(profile, base_url=BASE)
    return box, create_app(box, BASE).test_client()


def test_capability_statement_claims_cors():
    _, http = client()
    assert http.get("/fhir/metadata").get_json()["rest"][0]["security"]["cors"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/fhir/Patient/units-exceed-pat-1"),
        ("PUT", "/fhir/Task/t-1"),
        ("POST", "/oauth/token"),
        ("GET", "/fhir/.well-known/smart-configuration"),
    ],
)
def test_a_preflight_is_answered_without_a_token_or_a_fault(method, path):
    box, http = client()
    box.faults.fail = 1  # a preflight is not a FHIR request: the switch stays for the next one
    response = http.open(
        path,
        method="OPTIONS",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert method in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "if-match"} <= {h.strip() for h in allowed.split(",")}
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert box.faults.fail == 1


def test_answers_and_errors_are_readable_cross_origin():
    _, http = client()
    for response in (
        http.get("/fhir/metadata", headers={"Origin": APP}),
        http.get("/fhir/Patient/units-exceed-pat-1", headers={"Origin": APP}),  # 401
        http.post("/oauth/token", data={"grant_type": "nope"}, headers={"Origin": APP}),
        http.get("/fhir/Nope/1", headers={"Origin": APP}),  # 404 OperationOutcome
    ):
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert "Origin" in response.headers["Vary"]
        exposed = response.headers["Access-Control-Expose-Headers"]
        assert "ETag" in exposed and "Location" in exposed


def test_no_cors_headers_without_an_origin_or_on_the_authorize_page():
    _, http = client()
    assert "Access-Control-Allow-Origin" not in http.get("/fhir/metadata").headers
    page = http.get("/oauth/authorize", headers={"Origin": APP})
    assert "Access-Control-Allow-Origin" not in page.headers
