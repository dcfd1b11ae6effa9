"""SMART launch: registry, discovery, authorize URL, state, token exchange, refresh, scopes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from smart_launch.discovery import Discovery, SmartConfiguration
from smart_launch.errors import (
    AuthorizationDenied,
    DiscoveryFailed,
    IssuerNotAllowed,
    MissingLaunchContext,
    StateExpired,
    StateMismatch,
    TokenExchangeFailed,
)
from smart_launch.flow import finish_launch, refresh, start_launch
from smart_launch.http import make_session
from smart_launch.registry import RegistryError, load_registry
from smart_launch.scopes import scope_string, to_v1
from smart_launch.state import StateStore

ISS = "https://ehr.test/fhir"
CONFIG = {
    "authorization_endpoint": "https://auth.test/authorize",
    "token_endpoint": "https://auth.test/token",
    "code_challenge_methods_supported": ["S256"],
    "capabilities": ["launch-ehr", "context-ehr-encounter"],
}


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "ehrs.toml"
    path.write_text(f'''
[[ehr]]
name = "test"
issuer = "{ISS}"
client_id = "unitguard-test"
scopes = "launch openid fhirUser patient/Encounter.rs user/Task.cu"

[[ehr]]
name = "v1 server"
issuer = "https://v1.test/fhir"
client_id = "ug"
scope_style = "v1"
profile = "epic"
''')
    return load_registry(path)


def config():
    return SmartConfiguration.from_json(ISS, CONFIG)


def test_registry_finds_exact_issuer_and_refuses_others(registry):
    assert registry.find_by_issuer(ISS).client_id == "unitguard-test"
    for other in (ISS + "/", "https://evil.test/fhir", None):
        with pytest.raises(IssuerNotAllowed):
            registry.find_by_issuer(other)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no [[ehr]] table"),
        ('[[ehr]]\nname="x"\nclient_id="c"', "'issuer' is required"),
        ('[[ehr]]\nname="x"\nissuer="ftp://x"\nclient_id="c"', "must be the FHIR base URL"),
        ('[[ehr]]\nname="x"\nissuer="https://x"\nclient_id="c"\nprofile="cerner"', "'profile'"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_registry_errors_name_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RegistryError, match="bad.toml") as info:
        load_registry(path)
    assert message in str(info.value)


def test_example_registry_loads():
    from pathlib import Path

    reg = load_registry(Path(__file__).resolve().parents[2] / "smart_launch/ehrs.example.toml")
    assert {e.profile for e in reg.ehrs} >= {"epic", "oracle"}


@responses.activate
def test_discovery_requires_s256_and_is_cached():
    responses.get(f"{ISS}/.well-known/smart-configuration", json=CONFIG)
    discovery = Discovery(make_session())
    assert discovery.get(ISS).token_endpoint == "https://auth.test/token"
    discovery.get(ISS)
    assert len(responses.calls) == 1
    with pytest.raises(DiscoveryFailed, match="S256"):
        SmartConfiguration.from_json(ISS, {**CONFIG, "code_challenge_methods_supported": ["plain"]})


@responses.activate
def test_discovery_failure_is_clear():
    responses.get("https://down.test/fhir/.well-known/smart-configuration", status=404)
    with pytest.raises(DiscoveryFailed, match="down.test"):
        Discovery(make_session(retries=0)).get("https://down.test/fhir")


def test_ehr_launch_authorize_url(registry):
    store = StateStore()
    started = start_launch(
        registry.find_by_issuer(ISS), config(), store, "https://app.test/callback", launch="xyz"
    )
    query = parse_qs(urlsplit(started.url).query)
    assert started.url.startswith("https://auth.test/authorize?")
    assert query["response_type"] == ["code"] and query["client_id"] == ["unitguard-test"]
    assert query["launch"] == ["xyz"] and query["aud"] == [ISS]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"] == [started.state.state]
    assert "launch" in query["scope"][0].split()
    assert started.state.code_verifier not in started.url


def test_standalone_launch_asks_for_context(registry):
    started = start_launch(
        registry.find_by_issuer(ISS), config(), StateStore(), "https://app.test/callback"
    )
    scopes = parse_qs(urlsplit(started.url).query)["scope"][0].split()
    assert "launch/patient" in scopes and "launch" not in scopes
    assert "launch" not in parse_qs(urlsplit(started.url).query)


def test_v1_scopes_for_servers_that_want_them(registry):
    assert to_v1("patient/Observation.rs") == "patient/Observation.read"
    assert to_v1("user/Task.cu") == "user/Task.write"
    assert to_v1("user/Task.cruds") == "user/Task.*"
    assert to_v1("openid") == "openid"
    assert "patient/Encounter.read" in scope_string(("patient/Encounter.rs",), "v1")


def test_state_is_single_use_expiring_and_bound(registry):
    import time

    clock = [time.time()]
    store = StateStore(ttl_seconds=600, clock=lambda: clock[0])
    ehr = registry.find_by_issuer(ISS)
    started = start_launch(
        ehr, config(), store, "https://app.test/cb", launch="l", browser_binding="browser-a"
    )
    with pytest.raises(StateMismatch, match="another browser"):
        store.consume(started.state.state, browser_binding="browser-b")
    # consumed even when refused: a replay is unknown
    with pytest.raises(StateMismatch, match="already used"):
        store.consume(started.state.state)
    fresh = start_launch(
        ehr, config(), store, "https://app.test/cb", launch="l", browser_binding="browser-a"
    )
    # the binding is required: without the cookie (another browser, login CSRF) it is refused
    with pytest.raises(StateMismatch, match="another browser"):
        store.consume(fresh.state.state, browser_binding=None)
    again = start_launch(
        ehr, config(), store, "https://app.test/cb", launch="l", browser_binding="browser-a"
    )
    assert store.consume(again.state.state, browser_binding="browser-a").launch == "l"
    late = start_launch(ehr, config(), store, "https://app.test/cb", launch="l")
    clock[0] += 601
    with pytest.raises(StateExpired):
        store.consume(late.state.state)
    with pytest.raises(StateMismatch):
        store.consume(None)


def _token_body(**extra):
    return {
        "access_token": "at-secret",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "launch patient/Encounter.rs",
        "refresh_token": "rt-secret",
        "patient": "pat-1",
        "encounter": "enc-1",
        "need_patient_banner": False,
        **extra,
    }


@responses.activate
def test_code_exchange_sends_the_verifier_and_reads_context(registry):
    responses.post("https://auth.test/token", json=_token_body())
    ehr = registry.find_by_issuer(ISS)
    started = start_launch(ehr, config(), StateStore(), "https://app.test/cb", launch="l")
    tokens, context = finish_launch(ehr, config(), started.state, {"code": "c1"})
    sent = parse_qs(responses.calls[0].request.body)
    assert sent["code_verifier"] == [started.state.code_verifier]
    assert sent["grant_type"] == ["authorization_code"] and sent["code"] == ["c1"]
    assert (context.patient, context.encounter, context.need_patient_banner) == (
        "pat-1",
        "enc-1",
        False,
    )
    assert "at-secret" not in repr(tokens) and "rt-secret" not in repr(tokens)


@responses.activate
def test_wrong_verifier_or_refused_code_is_a_token_exchange_error(registry):
    responses.post(
        "https://auth.test/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "PKCE check failed"},
    )
    ehr = registry.find_by_issuer(ISS)
    started = start_launch(ehr, config(), StateStore(), "https://app.test/cb", launch="l")
    with pytest.raises(TokenExchangeFailed):
        finish_launch(ehr, config(), started.state, {"code": "c1"})
    assert len(responses.calls) == 1  # never retried: codes are single-use


def test_error_from_the_authorization_server_comes_first(registry):
    ehr = registry.find_by_issuer(ISS)
    started = start_launch(ehr, config(), StateStore(), "https://app.test/cb", launch="l")
    with pytest.raises(AuthorizationDenied, match="refused or cancelled at the EHR") as denied:
        finish_launch(
            ehr,
            config(),
            started.state,
            {"error": "access_denied", "error_description": "user said no"},
        )
    assert "user said no" not in str(denied.value)  # the query string's words are never shown


@responses.activate
def test_missing_launch_context_is_refused(registry):
    responses.post("https://auth.test/token", json=_token_body(encounter=None))
    ehr = registry.find_by_issuer(ISS)
    started = start_launch(ehr, config(), StateStore(), "https://app.test/cb", launch="l")
    with pytest.raises(MissingLaunchContext):
        finish_launch(ehr, config(), started.state, {"code": "c"})


@responses.activate
def test_refresh_keeps_the_refresh_token(registry):
    responses.post("https://auth.test/token", json={"access_token": "new", "expires_in": 60})
    from smart_launch.tokens import TokenSet

    old = TokenSet("old", expires_at=0, refresh_token="rt")
    assert old.expires_soon()
    fresh = refresh(registry.find_by_issuer(ISS), config(), old)
    assert fresh.access_token == "new" and fresh.refresh_token == "rt"
    assert parse_qs(responses.calls[0].request.body)["grant_type"] == ["refresh_token"]
    with pytest.raises(TokenExchangeFailed):
        refresh(registry.find_by_issuer(ISS), config(), TokenSet("x", 0))
