"""SMART Backend Services: client_credentials with a signed JWT assertion, token cached until
shortly before it expires. Used by workers (the Task outbox, bulk export) with system/ scopes."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from smart_launch.errors import TokenExchangeFailed

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class BackendServices:
    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        private_key_pem: str | bytes,
        scope: str,
        session: requests.Session | None = None,
        kid: str | None = None,
        alg: str = "RS384",
    ) -> None:
        self.token_endpoint, self.client_id, self.scope = token_endpoint, client_id, scope
        self.key = RSAKey.import_key(private_key_pem)
        self.kid = kid or self.key.thumbprint()
        self.alg = alg
        self.session = session or requests.Session()
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_pem_file(
        cls, token_endpoint: str, client_id: str, path: str | Path, scope: str, **kwargs
    ) -> BackendServices:
        return cls(token_endpoint, client_id, Path(path).read_bytes(), scope, **kwargs)

    def assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_endpoint,
            "exp": now + 240,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            {"alg": self.alg, "kid": self.kid, "typ": "JWT"},
            claims,
            self.key,
            algorithms=[self.alg],
        )

    def token(self) -> str:
        """A valid access token, fetched again when the cached one is within 60 s of expiry.
        Never retried automatically: a refused assertion is reported."""
        with self._lock:
            if self._token and time.time() < self._expires - 60:
                return self._token
            response = self.session.post(
                self.token_endpoint,
                timeout=(5, 30),
                data={
                    "grant_type": "client_credentials",
                    "scope": self.scope,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion(),
                },
            )
            if response.status_code != 200:
                raise TokenExchangeFailed(
                    f"backend services token refused ({response.status_code})"
                )
            body = response.json()
            self._token = body["access_token"]
            self._expires = time.time() + float(body.get("expires_in", 300))
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
