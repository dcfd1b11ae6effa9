"""The id_token of a SMART launch, verified before any claim of it is used.

The user's identity (``fhirUser``) decides who may see the coder queue and whose name goes into
a Task's history, so it is read only from an id_token that is signed by the EHR's key (its JWKS:
``jwks_uri`` from the SMART configuration, else from the OpenID configuration), issued by the
EHR (``iss``: the OpenID issuer the EHR names, else its FHIR base), for this app (``aud``: the
client id) and not expired. Anything else refuses the launch (OpenID Connect Core 1.0,
section 3.1.3.7, "ID Token Validation").
"""

from __future__ import annotations

import threading
import time

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from smart_launch.discovery import SmartConfiguration
from smart_launch.errors import SmartLaunchError
from smart_launch.http import make_session
from smart_launch.registry import RegisteredEhr

__all__ = ["IdTokenRejected", "KeySets", "verify_id_token"]

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"]
CLOCK_SKEW = 60  # seconds allowed between the EHR's clock and ours
KEYS_TTL = 3600.0  # a key set is fetched again after an hour, or at once for an unknown kid


class IdTokenRejected(SmartLaunchError):
    error = "invalid_id_token"


class KeySets:
    """The EHRs' signing keys, by JWKS URL, fetched when first needed and kept an hour."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session or make_session()
        self._cache: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    def jwks_uri(self, ehr: RegisteredEhr, config: SmartConfiguration) -> tuple[str, str]:
        """(the JWKS URL, the issuer the id_token must name)."""
        if config.jwks_uri:
            return config.jwks_uri, config.openid_issuer or ehr.issuer
        issuer = config.openid_issuer or ehr.issuer
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = self.session.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (requests.RequestException, ValueError):
            body = {}
        found = body.get("jwks_uri") if isinstance(body, dict) else None
        if not isinstance(found, str) or not found.startswith(("https://", "http://")):
            raise IdTokenRejected(
                "the EHR publishes no keys for its id_token (jwks_uri), so who signed in "
                "cannot be checked"
            )
        named = body.get("issuer")
        return found, named if isinstance(named, str) and named else issuer

    def get(self, url: str, fresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._cache.get(url)
        if cached and not fresh and time.monotonic() - cached[0] < KEYS_TTL:
            return cached[1]
        try:
            response = self.session.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (requests.RequestException, ValueError, JoseError, TypeError) as exc:
            raise IdTokenRejected(
                f"the EHR's id_token keys could not be read ({type(exc).__name__})"
            ) from None
        with self._lock:
            self._cache[url] = (time.monotonic(), keys)
        return keys


_DEFAULT = KeySets()


def verify_id_token(
    id_token: str,
    ehr: RegisteredEhr,
    config: SmartConfiguration,
    keys: KeySets | None = None,
    now: float | None = None,
) -> dict:
    """The claims of ``id_token`` once its signature, issuer, audience and times hold;
    IdTokenRejected (one line, no claim values) otherwise."""
    keys = keys or _DEFAULT
    url, issuer = keys.jwks_uri(ehr, config)
    try:
        try:
            decoded = jwt.decode(id_token, keys.get(url), algorithms=ALGORITHMS)
        except JoseError:  # perhaps a key the EHR rotated in since: fetch its keys once more
            decoded = jwt.decode(id_token, keys.get(url, fresh=True), algorithms=ALGORITHMS)
    except (JoseError, ValueError, TypeError) as exc:
        raise IdTokenRejected(
            f"the EHR's id_token has no valid signature ({type(exc).__name__})"
        ) from None
    claims = decoded.claims
    now = time.time() if now is None else now
    if claims.get("iss") != issuer:
        raise IdTokenRejected("the id_token was issued by another server than this EHR")
    audience = claims.get("aud")
    if ehr.client_id not in (audience if isinstance(audience, list) else [audience]):
        raise IdTokenRejected("the id_token was issued for another app")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _number(exp) or exp < now - CLOCK_SKEW:
        raise IdTokenRejected("the id_token has expired")
    if iat is not None and (not _number(iat) or iat > now + CLOCK_SKEW):
        raise IdTokenRejected("the id_token is dated in the future")
    return dict(claims)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
