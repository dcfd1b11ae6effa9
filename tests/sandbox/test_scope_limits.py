"""The sandbox grants only what a client may have, and a patient's token writes only that
patient's resources (the two findings of the security review against the sandbox EHR)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from sandbox.app import create_app
from sandbox.auth import Client, covered, grantable
from sandbox.seed import build_sandbox

BASE = "http://sandbox.test"
FHIR = f"{BASE}/fhir"
CB = "http://app.test/cb"
PATIENT = "units-exceed-pat-1"
MINE = "units-exceed-obs-1"
THEIRS = "cloned-note-obs-1"  # another patient's Observation
VERIFIER = "v" * 64
KEY = RSAKey.generate_key(2048, parameters={"kid": "backend"})


def challenge() -> str:
    digest = hashlib.sha256(VERIFIER.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@pytest.fixture
def sandbox():
    box = build_sandbox("full", base_url=BASE)
    return box, create_app(box, BASE).test_client()


def user_token(box, http, scope: str, client: Client | None = None) -> dict:
    client = client or Client("public-app", (CB,))
    box.grants.register(client)
    launch = box.grants.new_launch(PATIENT, "units-exceed-enc-1")
    resp = http.get(
        "/oauth/authorize",
        query_string={
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": CB,
            "scope": scope,
            "state": "st",
            "aud": FHIR,
            "launch": launch,
            "code_challenge": challenge(),
            "code_challenge_method": "S256",
        },
    )
    code = re.search(r"code=([^&]+)", resp.headers["Location"]).group(1)
    token = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CB,
            "client_id": client.client_id,
            "code_verifier": VERIFIER,
        },
    )
    assert token.status_code == 200, token.get_data(as_text=True)
    return token.get_json()


def test_a_public_client_never_gets_system_scopes(sandbox):
    box, http = sandbox
    body = user_token(box, http, "launch patient/*.rs system/*.cruds system/Task.cruds")
    granted = body["scope"].split()
    assert "patient/*.rs" in granted and not [s for s in granted if s.startswith("system/")]
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    # with the system scope it asked for, this would have read every patient's Observations
    assert http.get(f"/fhir/Observation/{THEIRS}", headers=auth).status_code == 404
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    assert http.post("/fhir/Task", json=task, headers=auth).status_code == 403


def test_a_registered_client_gets_at_most_its_registered_scopes(sandbox):
    box, http = sandbox
    app = Client("narrow-app", (CB,), scopes=frozenset({"launch", "patient/Observation.rs"}))
    body = user_token(box, http, "launch patient/*.cruds user/*.cruds openid", client=app)
    assert body["scope"].split() == ["launch"]
    body = user_token(box, http, "launch patient/Observation.r", client=app)
    assert sorted(body["scope"].split()) == ["launch", "patient/Observation.r"]


def test_a_backend_client_gets_only_its_registered_system_scopes(sandbox):
    import time
    import uuid

    box, http = sandbox
    box.grants.register(
        Client(
            "worker",
            jwks={"keys": [KEY.as_dict(private=False)]},
            scopes=frozenset({"system/Task.cruds"}),
        )
    )

    def assertion() -> str:
        claims = {
            "iss": "worker",
            "sub": "worker",
            "aud": f"{BASE}/oauth/token",
            "exp": int(time.time()) + 60,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": "RS384", "kid": "backend"}, claims, KEY, algorithms=["RS384"])

    def ask(scope: str):
        return http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "scope": scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion(),
            },
        )

    narrowed = ask("system/*.cruds system/Task.rs")
    assert narrowed.status_code == 200 and narrowed.get_json()["scope"] == "system/Task.rs"
    assert ask("system/Patient.rs").status_code == 400  # nothing it may have: refused


@pytest.mark.parametrize(
    ("scope", "allowed", "expected"),
    [
        ("patient/Observation.rs", {"patient/*.rs"}, True),
        ("patient/Observation.cruds", {"patient/*.rs"}, False),
        ("patient/Observation.read", {"patient/*.rs"}, True),
        ("user/Observation.rs", {"patient/*.rs"}, False),
        ("system/*.cruds", {"system/Task.cruds"}, False),
        ("openid", {"openid"}, True),
        ("launch", {"openid"}, False),
    ],
)
def test_covered(scope, allowed, expected):
    assert covered(scope, frozenset(allowed)) is expected


def test_system_scopes_never_come_through_a_users_launch():
    keyed = Client("keyed", (CB,), jwks={"keys": []})
    assert grantable(keyed, frozenset({"system/*.cruds", "launch"}), system=False) == {"launch"}


def test_a_patient_token_cannot_write_another_patients_resources(sandbox):
    box, http = sandbox
    body = user_token(box, http, "launch patient/*.cruds")
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    theirs, version = box.store.get("Observation", THEIRS)
    changed = dict(theirs, status="entered-in-error")
    assert http.put(f"/fhir/Observation/{THEIRS}", json=changed, headers=auth).status_code == 404
    # nor by pointing the body at this patient, nor by creating one for the other patient
    moved = dict(changed, subject={"reference": f"Patient/{PATIENT}"})
    assert http.put(f"/fhir/Observation/{THEIRS}", json=moved, headers=auth).status_code == 404
    assert box.store.get("Observation", THEIRS) == (theirs, version)
    other = {k: v for k, v in theirs.items() if k not in ("id", "meta")}
    assert http.post("/fhir/Observation", json=other, headers=auth).status_code == 403
    # moving one's own Observation to another patient is refused too
    mine, _ = box.store.get("Observation", MINE)
    away = dict(mine, subject=theirs["subject"])
    assert http.put(f"/fhir/Observation/{MINE}", json=away, headers=auth).status_code == 403
    # the patient's own resources can still be written
    own = dict(mine, status="amended")
    assert http.put(f"/fhir/Observation/{MINE}", json=own, headers=auth).status_code == 200
