"""The id_token is verified before its fhirUser is used (second security review, INFO: its
claims were read without checking the signature, so anyone able to hand the app a token
response could name any user, a coder included)."""

from __future__ import annotations

import base64
import json
import time

import pytest
import responses
from joserfc import jwt
from joserfc.jwk import RSAKey

from smart_launch.discovery import SmartConfiguration
from smart_launch.flow import finish_launch, start_launch
from smart_launch.id_token import IdTokenRejected, KeySets
from smart_launch.state import StateStore
from tests.smart_launch import test_launch
from tests.smart_launch.test_launch import CONFIG, ISS, _token_body

registry = test_launch.registry  # the fixture: the EHR list with ISS

KEY = RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "ehr-1"})
JWKS_URI = "https://auth.test/jwks"
USER = "Practitioner/pt-1"


def signed(key=KEY, kid: str = "ehr-1", **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": "unitguard-test", "sub": "pt-1", "fhirUser": USER, "iat": now}
    claims = {**claims, "exp": now + 300, **changes}
    return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)


def unsigned(**claims) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'iss': ISS, 'fhirUser': USER, **claims})}.sig"


def smart_config(**extra) -> SmartConfiguration:
    return SmartConfiguration.from_json(ISS, {**CONFIG, **extra})


def launch(registry, id_token: str, config: SmartConfiguration | None = None):
    """finish_launch of a token response carrying ``id_token``, with fresh key caches."""
    config = config or smart_config(issuer=ISS, jwks_uri=JWKS_URI)
    responses.post("https://auth.test/token", json=_token_body(id_token=id_token))
    ehr = registry.find_by_issuer(ISS)
    started = start_launch(ehr, config, StateStore(), "https://app.test/cb", launch="l")
    return finish_launch(ehr, config, started.state, {"code": "c"}, keys=KeySets())


def serve_keys(*keys) -> None:
    responses.get(JWKS_URI, json={"keys": [k.as_dict(private=False) for k in keys]})


@responses.activate
def test_a_signed_id_token_names_the_user(registry):
    serve_keys(KEY)
    _, context = launch(registry, signed())
    assert context.fhir_user == USER


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: unsigned(), id="not signed (read as it was before)"),
        pytest.param(lambda: signed(OTHER), id="signed by another key"),
        pytest.param(lambda: signed(iss="https://evil.test/fhir"), id="another issuer"),
        pytest.param(lambda: signed(aud="another-app"), id="another app"),
        pytest.param(lambda: signed(exp=int(time.time()) - 3600), id="expired"),
        pytest.param(lambda: signed(iat=int(time.time()) + 3600), id="from the future"),
        pytest.param(lambda: signed(exp="tomorrow"), id="exp not a number"),
    ],
)
@responses.activate
def test_an_id_token_that_does_not_verify_refuses_the_launch(registry, token):
    serve_keys(KEY)
    with pytest.raises(IdTokenRejected) as refused:
        launch(registry, token())
    assert USER not in str(refused.value) and "\n" not in str(refused.value)


@responses.activate
def test_the_keys_come_from_the_openid_configuration_when_the_smart_one_names_none(registry):
    responses.get(
        f"{ISS}/.well-known/openid-configuration", json={"issuer": ISS, "jwks_uri": JWKS_URI}
    )
    serve_keys(KEY)
    _, context = launch(registry, signed(), smart_config())
    assert context.fhir_user == USER


@responses.activate
def test_an_ehr_that_publishes_no_keys_cannot_name_the_user(registry):
    responses.get(f"{ISS}/.well-known/openid-configuration", status=404)
    with pytest.raises(IdTokenRejected, match="jwks_uri"):
        launch(registry, signed(), smart_config())


@responses.activate
def test_a_key_the_ehr_rotated_in_is_fetched_again(registry):
    keys = KeySets()
    responses.get(JWKS_URI, json={"keys": [OTHER.as_dict(private=False)]})
    responses.get(JWKS_URI, json={"keys": [KEY.as_dict(private=False)]})
    config = smart_config(issuer=ISS, jwks_uri=JWKS_URI)
    keys.get(JWKS_URI)  # the old key set, cached
    responses.post("https://auth.test/token", json=_token_body(id_token=signed()))
    ehr = registry.find_by_issuer(ISS)
    started = start_launch(ehr, config, StateStore(), "https://app.test/cb", launch="l")
    _, context = finish_launch(ehr, config, started.state, {"code": "c"}, keys=keys)
    assert context.fhir_user == USER
