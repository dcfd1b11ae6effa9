"""The sandbox's refresh grant as SMART App Launch defines it: a public client's refresh request
carries only grant_type and refresh_token (SMART's JavaScript client sends no client_id);
a confidential client must still authenticate, and a token serves only the client it was
issued to."""

from __future__ import annotations

from sandbox.auth import Client, Grant, Grants

TOKEN_URL = "http://sandbox.test/oauth/token"


def issued(grants: Grants, client_id: str) -> str:
    body = grants._issue(Grant(client_id, frozenset({"offline_access", "patient/*.rs"}), "p1"))
    return body["refresh_token"]


def grants() -> Grants:
    box = Grants("http://sandbox.test/fhir")
    box.register(Client("public-app", ("http://app.test/cb",)))
    box.register(Client("other-public", ("http://other.test/cb",)))
    box.register(Client("confidential-app", ("http://conf.test/cb",), secret="s3cret"))
    return box


def test_a_public_client_refreshes_with_the_refresh_token_alone():
    box = grants()
    refresh = issued(box, "public-app")
    status, body = box.token(
        {"grant_type": "refresh_token", "refresh_token": refresh}, None, TOKEN_URL
    )
    assert status == 200 and body["access_token"] and body["patient"] == "p1"
    # refresh tokens rotate: the old one is spent
    again = box.token({"grant_type": "refresh_token", "refresh_token": refresh}, None, TOKEN_URL)
    assert again[0] == 400 and again[1]["error"] == "invalid_grant"


def test_a_confidential_clients_refresh_token_needs_its_credentials():
    box = grants()
    refresh = issued(box, "confidential-app")
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert box.token(form, None, TOKEN_URL) == (401, {"error": "invalid_client"})
    status, _ = box.token(form, ("confidential-app", "s3cret"), TOKEN_URL)
    assert status == 200


def test_a_refresh_token_serves_only_its_own_client():
    box = grants()
    refresh = issued(box, "public-app")
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "other-public"}
    assert box.token(form, None, TOKEN_URL)[0] == 400
    unknown = {"grant_type": "refresh_token", "refresh_token": "never-issued"}
    assert box.token(unknown, None, TOKEN_URL)[0] == 400
