"""SMART configuration from {iss}/.well-known/smart-configuration, cached per issuer."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import requests

from smart_launch.errors import DiscoveryFailed


@dataclass(frozen=True)
class SmartConfiguration:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    capabilities: tuple[str, ...] = ()
    code_challenge_methods: tuple[str, ...] = ()
    token_auth_methods: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    # OpenID Connect (SMART's sso-openid-connect): who signs id_tokens, and where its keys are
    openid_issuer: str | None = None
    jwks_uri: str | None = None
    revocation_endpoint: str | None = None  # RFC 7009 token revocation, where offered

    @classmethod
    def from_json(cls, issuer: str, body: object) -> SmartConfiguration:
        if not isinstance(body, dict):
            raise DiscoveryFailed("the SMART configuration is not a JSON object")
        for key in ("authorization_endpoint", "token_endpoint"):
            if not isinstance(body.get(key), str):
                raise DiscoveryFailed(f"the SMART configuration has no {key}")
        config = cls(
            issuer=issuer,
            authorization_endpoint=body["authorization_endpoint"],
            token_endpoint=body["token_endpoint"],
            capabilities=tuple(body.get("capabilities") or ()),
            code_challenge_methods=tuple(body.get("code_challenge_methods_supported") or ()),
            token_auth_methods=tuple(body.get("token_endpoint_auth_methods_supported") or ()),
            scopes_supported=tuple(body.get("scopes_supported") or ()),
            openid_issuer=_url(body.get("issuer")),
            jwks_uri=_url(body.get("jwks_uri")),
            revocation_endpoint=_url(body.get("revocation_endpoint")),
        )
        if "S256" not in config.code_challenge_methods:
            raise DiscoveryFailed(
                "the authorization server does not offer PKCE S256, which "
                "SMART App Launch 2 requires"
            )
        return config


def _url(value: object) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


class Discovery:
    """Fetch and cache SMART configurations; call only for issuers already allowed."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self._cache: dict[str, SmartConfiguration] = {}
        self._lock = threading.Lock()

    def get(self, issuer: str) -> SmartConfiguration:
        with self._lock:
            if issuer in self._cache:
                return self._cache[issuer]
        url = issuer.rstrip("/") + "/.well-known/smart-configuration"
        try:
            response = self.session.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            config = SmartConfiguration.from_json(issuer, response.json())
        except requests.RequestException as exc:
            raise DiscoveryFailed(
                f"cannot read the SMART configuration of {issuer} ({type(exc).__name__})"
            ) from exc
        except ValueError as exc:
            raise DiscoveryFailed(f"the SMART configuration of {issuer} is not JSON") from exc
        with self._lock:
            self._cache[issuer] = config
        return config
