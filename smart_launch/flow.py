"""The SMART App Launch: authorize URL (EHR or standalone), code exchange, refresh (authlib)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from smart_launch.discovery import SmartConfiguration
from smart_launch.errors import (
    AuthorizationDenied,
    MissingLaunchContext,
    TokenExchangeFailed,
    authorization_denied,
)
from smart_launch.id_token import KeySets, verify_id_token
from smart_launch.registry import RegisteredEhr
from smart_launch.scopes import scope_string
from smart_launch.state import LaunchState, StateStore
from smart_launch.tokens import LaunchContext, TokenSet, parse_token_response


@dataclass(frozen=True)
class Started:
    url: str
    state: LaunchState


def _session(
    ehr: RegisteredEhr, config: SmartConfiguration, redirect_uri: str, scope: str | None = None
) -> OAuth2Session:
    auth_method = "none"
    if ehr.private_key:
        auth_method = "private_key_jwt"
    elif ehr.client_secret:
        auth_method = "client_secret_basic"
    session = OAuth2Session(
        client_id=ehr.client_id,
        client_secret=Path(ehr.private_key).read_text() if ehr.private_key else ehr.client_secret,
        token_endpoint_auth_method=auth_method,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
    )
    if ehr.private_key:
        session.register_client_auth_method(PrivateKeyJWT(config.token_endpoint, alg="RS384"))
    return session


def start_launch(
    ehr: RegisteredEhr,
    config: SmartConfiguration,
    store: StateStore,
    redirect_uri: str,
    launch: str | None = None,
    browser_binding: str | None = None,
    sign_in: bool = False,
) -> Started:
    """Build the authorize URL; EHR launch passes ``launch``, standalone asks for context.
    ``sign_in`` is a standalone launch without patient context (a coder's login): it asks
    for the user's identity (``openid fhirUser``) and the user-level scopes only."""
    scopes = list(ehr.scopes) or []
    if sign_in and not launch:
        scopes = ["openid", "fhirUser"] + [
            s for s in scopes if s.startswith("user/") or s in ("offline_access", "online_access")
        ]
    elif launch:
        scopes = [s for s in scopes if not s.startswith("launch/")]
        if "launch" not in scopes:
            scopes.insert(0, "launch")
    else:
        scopes = [s for s in scopes if s != "launch"]
        scopes += [s for s in ("launch/patient", "launch/encounter") if s not in scopes]
    scope = scope_string(tuple(scopes), ehr.scope_style)
    state = LaunchState(
        state=secrets.token_urlsafe(32),
        code_verifier=generate_token(64),
        iss=ehr.issuer,
        redirect_uri=redirect_uri,
        created_at=time.time(),
        launch=launch,
        browser_binding=browser_binding,
    )
    extra = {"aud": ehr.issuer}
    if launch:
        extra["launch"] = launch
    url, _ = _session(ehr, config, redirect_uri, scope).create_authorization_url(
        config.authorization_endpoint, state=state.state, code_verifier=state.code_verifier, **extra
    )
    store.put(state)
    return Started(url, state)


def finish_launch(
    ehr: RegisteredEhr,
    config: SmartConfiguration,
    state: LaunchState,
    params: dict[str, str],
    require_encounter: bool = True,
    require_patient: bool = True,
    keys: KeySets | None = None,
) -> tuple[TokenSet, LaunchContext]:
    """Exchange the code (never retried: codes are single-use) and read the launch context.
    With ``require_patient`` False a launch without patient context (a coder's) is accepted;
    one with a patient still needs its encounter when ``require_encounter``. An id_token is
    verified against the EHR's keys (``keys``) before its fhirUser is taken."""
    if params.get("error"):  # in our words: the query string is anyone's to write
        raise authorization_denied(params["error"])
    code = params.get("code")
    if not code:
        raise AuthorizationDenied("the authorization server returned no code")
    session = _session(ehr, config, state.redirect_uri)
    try:
        body = session.fetch_token(
            config.token_endpoint,
            code=code,
            code_verifier=state.code_verifier,
            redirect_uri=state.redirect_uri,
            timeout=15,
        )
    except Exception as exc:  # noqa: BLE001 - authlib/requests raise many kinds; map them all
        raise TokenExchangeFailed(
            f"the token endpoint refused the code ({type(exc).__name__})"
        ) from exc
    tokens, context = parse_token_response(dict(body))
    if tokens.id_token:  # who signed in: only from an id_token the EHR's key signed
        claims = verify_id_token(tokens.id_token, ehr, config, keys)
        user = claims.get("fhirUser")
        context = replace(context, fhir_user=user if isinstance(user, str) else context.fhir_user)
    if (require_patient and not context.patient) or (
        context.patient and require_encounter and not context.encounter
    ):
        raise MissingLaunchContext("the EHR did not say which patient and visit were open")
    return tokens, context


def refresh(ehr: RegisteredEhr, config: SmartConfiguration, tokens: TokenSet) -> TokenSet:
    if not tokens.refresh_token:
        raise TokenExchangeFailed("the session expired and cannot be refreshed; launch again")
    session = _session(ehr, config, "")
    try:
        body = session.refresh_token(
            config.token_endpoint, refresh_token=tokens.refresh_token, timeout=15
        )
    except Exception as exc:  # noqa: BLE001
        raise TokenExchangeFailed(f"refresh refused ({type(exc).__name__})") from exc
    fresh, _ = parse_token_response(dict(body))
    if not fresh.refresh_token:
        fresh.refresh_token = tokens.refresh_token
    return fresh


REVOKE_TIMEOUT = (3.0, 5.0)  # (connect, read) seconds: a revocation is best effort


def revoke(ehr: RegisteredEhr, config: SmartConfiguration, tokens: TokenSet) -> list[str]:
    """Ask the EHR to revoke the session's refresh token, then its access token (RFC 7009), at
    the ``revocation_endpoint`` its SMART configuration names; nothing when it names none. Best
    effort: never raises; returns the token types whose revocation failed."""
    if not config.revocation_endpoint:
        return []
    session = _session(ehr, config, "")
    failed = []
    for token, hint in (
        (tokens.refresh_token, "refresh_token"),
        (tokens.access_token, "access_token"),
    ):
        if not token:
            continue
        try:
            response = session.revoke_token(
                config.revocation_endpoint,
                token=token,
                token_type_hint=hint,
                timeout=REVOKE_TIMEOUT,
            )
            if response.status_code != 200:  # RFC 7009 section 2.2: 200 for any token
                failed.append(hint)
        except Exception:  # noqa: BLE001 - authlib/requests raise many kinds; logout goes on
            failed.append(hint)
    return failed
