"""CDS Hooks: discovery, signed-JWT checks, one card per problem with a SMART link."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

from plugin.web.cds_hooks import SERVICES, CdsClient, create_cds_blueprint

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
APP = "https://app.test"
SERVICE = "unitguard-encounter-discharge"
AUD = f"{APP}/cds-services/{SERVICE}"
KEY = RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})


@pytest.fixture
def client():
    app = Flask(__name__)
    ehr = CdsClient("https://ehr.test/cds-client", {"keys": [KEY.as_dict(private=False)]})
    app.register_blueprint(create_cds_blueprint([ehr], APP))
    return app.test_client()


def token(key=KEY, **claims) -> str:
    body = {
        "iss": "https://ehr.test/cds-client",
        "aud": AUD,
        "exp": int(time.time()) + 300,
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode(
        {"alg": "RS384", "kid": "ehr-1", "typ": "JWT"}, body, key, algorithms=["RS384"]
    )


def request_body(fixture: str) -> dict:
    bundle = json.loads((FIXTURES / fixture).read_text())
    visit = f"{fixture.removesuffix('.json').replace('_', '-')}-enc-1"
    return {
        "hook": "encounter-discharge",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.test/fhir",
        "context": {
            "patientId": visit.replace("enc-1", "pat-1"),
            "encounterId": visit,
            "userId": "Practitioner/pt",
        },
        "prefetch": {"everything": bundle},
    }


def test_discovery_lists_both_hooks_with_prefetch(client):
    services = client.get("/cds-services").get_json()["services"]
    assert {s["hook"] for s in services} == {"encounter-discharge", "patient-view"}
    assert all("prefetch" in s and s["id"] in SERVICES for s in services)


def test_defective_visit_gives_cards_with_smart_links(client):
    resp = client.post(
        f"/cds-services/{SERVICE}",
        json=request_body("unsigned_no_total_time.json"),
        headers={"Authorization": f"Bearer {token()}"},
    )
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    indicators = {c["summary"].split(":")[0]: c["indicator"] for c in cards}
    assert indicators["doc-unsigned"] == "critical"
    assert indicators["doc-no-total-time"] == "critical"  # an error since BPM §220.3 E
    for card in cards:
        assert len(card["summary"]) < 140
        link = card["links"][0]
        assert link["type"] == "smart" and link["url"] == f"{APP}/launch"
        assert json.loads(link["appContext"]) == {
            "encounter": "Encounter/unsigned-no-total-time-enc-1"
        }


def test_clean_visit_gives_no_cards(client):
    resp = client.post(
        f"/cds-services/{SERVICE}",
        json=request_body("clean_97112_97110.json"),
        headers={"Authorization": f"Bearer {token()}"},
    )
    assert resp.get_json() == {"cards": []}


@pytest.mark.parametrize(
    "bad",
    [
        lambda: token(aud="https://elsewhere.test/cds-services/x"),
        lambda: token(exp=int(time.time()) - 10),
        lambda: token(iss="https://unknown.test"),
        lambda: token(key=OTHER),
        lambda: token(jti=None),
        lambda: "not-a-jwt",
    ],
)
def test_bad_tokens_are_refused(client, bad):
    resp = client.post(
        f"/cds-services/{SERVICE}",
        json=request_body("units_exceed.json"),
        headers={"Authorization": f"Bearer {bad()}"},
    )
    assert resp.status_code == 401 and resp.get_json() == {"error": "unauthorized"}


def test_replayed_token_and_missing_token_are_refused(client):
    once = token()
    body = request_body("units_exceed.json")
    assert (
        client.post(
            f"/cds-services/{SERVICE}", json=body, headers={"Authorization": f"Bearer {once}"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/cds-services/{SERVICE}", json=body, headers={"Authorization": f"Bearer {once}"}
        ).status_code
        == 401
    )
    assert client.post(f"/cds-services/{SERVICE}", json=body).status_code == 401


def test_malformed_body_is_a_400(client):
    resp = client.post(
        f"/cds-services/{SERVICE}", data="nonsense", headers={"Authorization": f"Bearer {token()}"}
    )
    assert resp.status_code == 400
