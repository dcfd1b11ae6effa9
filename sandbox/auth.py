"""The sandbox's SMART authorization server: authorize with launch context, PKCE S256 only,
tokens with patient/encounter context, refresh, and backend services (private_key_jwt).

Tokens are opaque random strings kept in memory with their grant; scopes are enforced on every
FHIR request by ``Grants.allows``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

ALGORITHMS = ["RS384", "ES384", "RS256"]
BEARER = "Bearer"  # the OAuth token type (RFC 6750)


@dataclass
class Client:
    """A registered app. ``scopes``: what it registered for (None: any patient/, user/ and
    launch scopes for an app, any system/ scope for a backend client with a key). Only a
    client with a key gets system/ scopes, and only by client_credentials."""

    client_id: str
    redirect_uris: tuple[str, ...] = ()
    secret: str | None = None
    jwks: dict | None = None  # for private_key_jwt and backend services
    scopes: frozenset[str] | None = None


def _perms(perms: str) -> set[str]:
    return set({"read": "rs", "write": "cud", "*": "cruds"}.get(perms, perms))


def covered(scope: str, allowed: frozenset[str]) -> bool:
    """Whether ``scope`` is within the ``allowed`` ones (exactly, or by a wider resource type
    ``*`` or more permission letters at the same level)."""
    if scope in allowed:
        return True
    level, _, rest = scope.partition("/")
    rtype, _, perms = rest.partition(".")
    if not perms:
        return False
    for grant in allowed:
        glevel, _, grest = grant.partition("/")
        gtype, _, gperms = grest.partition(".")
        if glevel == level and gtype in (rtype, "*") and _perms(perms) <= _perms(gperms):
            return True
    return False


def grantable(client: Client, requested: frozenset[str], system: bool) -> frozenset[str]:
    """The requested scopes narrowed to what ``client`` may have: system/ scopes only for a
    keyed client asking by client_credentials (``system``), never in a user's launch."""
    if system:
        keep = {s for s in requested if s.startswith("system/")} if client.jwks else set()
    else:
        keep = {s for s in requested if not s.startswith("system/")}
    if client.scopes is not None:
        keep = {s for s in keep if covered(s, client.scopes)}
    return frozenset(keep)


@dataclass
class Grant:
    client_id: str
    scopes: frozenset[str]
    patient: str | None = None
    encounter: str | None = None
    user: str | None = None
    expires: float = 0.0
    refresh_token: str | None = None
    code_challenge: str | None = None
    redirect_uri: str | None = None


@dataclass
class Grants:
    """Clients, launches, codes and tokens of the sandbox (in memory)."""

    fhir_base: str
    token_ttl: float = 3600.0
    clients: dict[str, Client] = field(default_factory=dict)
    launches: dict[str, dict] = field(default_factory=dict)
    codes: dict[str, tuple[Grant, float]] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    seen_jti: set[str] = field(default_factory=set)
    signing_key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "sandbox"})
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, client: Client) -> None:
        self.clients[client.client_id] = client

    def new_launch(self, patient: str, encounter: str | None, user: str = "Practitioner/pt") -> str:
        launch = secrets.token_urlsafe(16)
        self.launches[launch] = {"patient": patient, "encounter": encounter, "user": user}
        return launch

    def expire_all(self) -> None:
        for grant in self.tokens.values():
            grant.expires = 0.0

    # --- authorize ---------------------------------------------------------------------------
    def authorize(self, args: dict[str, str], picked: dict | None = None) -> tuple[int, str]:
        """(302, redirect URL) or (400, message) for an authorize request; (200, "") when a
        standalone launch asks for a patient and none is ``picked`` yet: the caller shows the
        patient picker and calls again with the chosen context; (200, "user") when a standalone
        sign-in (``openid fhirUser``, no patient) has not said who the user is yet."""
        client = self.clients.get(args.get("client_id", ""))
        redirect_uri = args.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            return 400, "unknown client or unregistered redirect_uri"

        def back(**params: str) -> tuple[int, str]:
            params["state"] = args.get("state", "")
            return 302, f"{redirect_uri}?{urlencode(params)}"

        if args.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE S256 is required")
        if args.get("aud", "").rstrip("/") != self.fhir_base.rstrip("/"):
            return back(error="invalid_request", error_description="aud is not this FHIR server")
        scopes = grantable(client, frozenset(args.get("scope", "").split()), system=False)
        context: dict = {}
        if "launch" in scopes:
            context = self.launches.pop(args.get("launch", ""), None) or {}
            if not context:
                return back(error="invalid_request", error_description="unknown launch")
        elif "launch/patient" in scopes:  # standalone: the user picks the patient
            if picked is None:
                return 200, ""
            context = picked
        elif "openid" in scopes or "fhirUser" in scopes:  # standalone sign-in: who is it?
            if picked is None or not picked.get("user"):
                return 200, "user"
            context = {"user": picked["user"]}
        code = secrets.token_urlsafe(24)
        grant = Grant(
            client.client_id,
            scopes,
            context.get("patient"),
            context.get("encounter"),
            context.get("user"),
            code_challenge=args["code_challenge"],
            redirect_uri=redirect_uri,
        )
        with self.lock:
            self.codes[code] = (grant, time.time() + 60)
        return back(code=code)

    # --- token -------------------------------------------------------------------------------
    def _client_auth(
        self, form: dict, basic: tuple[str, str] | None, token_url: str
    ) -> Client | None:
        if (
            form.get("client_assertion_type")
            == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return self._assertion_client(form.get("client_assertion", ""), token_url)
        if basic:
            client = self.clients.get(basic[0])
            if client and client.secret and hmac.compare_digest(client.secret, basic[1]):
                return client
            return None
        client = self.clients.get(form.get("client_id", ""))
        return client if client and not client.secret and not client.jwks else None

    def _assertion_client(self, assertion: str, token_url: str) -> Client | None:
        try:
            payload = assertion.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            client = self.clients.get(claims.get("iss", ""))
            if client is None or not client.jwks:
                return None
            checked = jwt.decode(
                assertion, KeySet.import_key_set(client.jwks), algorithms=ALGORITHMS
            ).claims
        except (JoseError, ValueError, IndexError, TypeError):
            return None
        aud = checked.get("aud")
        if checked.get("sub") != client.client_id or token_url not in (
            aud if isinstance(aud, list) else [aud]
        ):
            return None
        if not isinstance(checked.get("exp"), int) or checked["exp"] < time.time():
            return None
        jti = checked.get("jti")
        with self.lock:
            if not jti or jti in self.seen_jti:
                return None
            self.seen_jti.add(jti)
        return client

    def _refresh_holder(self, refresh_token: str) -> tuple[bool, Client | None]:
        """(whether the refresh token is live, the public client it was issued to: None for
        a confidential client, which must authenticate)."""
        with self.lock:
            grant = self.refresh.get(refresh_token)
        client = self.clients.get(grant.client_id) if grant else None
        public = client if client and not client.secret and not client.jwks else None
        return grant is not None, public

    def token(self, form: dict, basic: tuple[str, str] | None, token_url: str) -> tuple[int, dict]:
        grant_type = form.get("grant_type")
        client = self._client_auth(form, basic, token_url)
        if client is None and grant_type == "refresh_token" and not _credentials(form, basic):
            # SMART App Launch: a public client's refresh request carries only grant_type and
            # refresh_token (SMART's JS client sends no client_id); the token names the client.
            live, client = self._refresh_holder(form.get("refresh_token", ""))
            if not live:
                return 400, {"error": "invalid_grant", "error_description": "unknown refresh_token"}
        if client is None:
            return 401, {"error": "invalid_client"}
        if grant_type == "authorization_code":
            with self.lock:
                found = self.codes.pop(form.get("code", ""), None)
            if not found or found[1] < time.time() or found[0].client_id != client.client_id:
                return 400, {"error": "invalid_grant", "error_description": "unknown code"}
            grant = found[0]
            if form.get("redirect_uri") != grant.redirect_uri:
                return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .decode()
                .rstrip("=")
            )
            if not verifier or not hmac.compare_digest(challenge, grant.code_challenge or ""):
                return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
            return 200, self._issue(grant)
        if grant_type == "refresh_token":
            with self.lock:
                grant = self.refresh.pop(form.get("refresh_token", ""), None)
            if grant is None or grant.client_id != client.client_id:
                return 400, {"error": "invalid_grant"}
            return 200, self._issue(grant)
        if grant_type == "client_credentials":
            if not client.jwks:
                return 400, {"error": "unauthorized_client"}
            scopes = grantable(client, frozenset(form.get("scope", "").split()), system=True)
            if not scopes:
                return 400, {"error": "invalid_scope", "error_description": "no scope allowed"}
            return 200, self._issue(Grant(client.client_id, scopes))
        return 400, {"error": "unsupported_grant_type"}

    def revoke(self, form: dict, basic: tuple[str, str] | None, url: str) -> tuple[int, dict]:
        """RFC 7009 token revocation: the client (authenticated as at the token endpoint, a
        public one by its client_id) ends one of its own tokens; a refresh token takes the
        access tokens of its grant with it. 200 whether or not the token was known (section
        2.2); 401 for a client that does not authenticate."""
        client = self._client_auth(form, basic, url)
        if client is None:
            return 401, {"error": "invalid_client"}
        token = form.get("token", "")
        with self.lock:
            for table in (self.refresh, self.tokens):
                grant = table.get(token)
                if grant is None or grant.client_id != client.client_id:
                    continue
                del table[token]
                if table is self.refresh:
                    for access in [k for k, g in self.tokens.items() if g is grant]:
                        del self.tokens[access]
        return 200, {}

    def _issue(self, grant: Grant) -> dict:
        access = secrets.token_urlsafe(32)
        grant.expires = time.time() + self.token_ttl
        with self.lock:
            self.tokens[access] = grant
        body: dict = {
            "access_token": access,
            "token_type": BEARER,
            "expires_in": int(self.token_ttl),
            "scope": " ".join(sorted(grant.scopes)),
        }
        if grant.patient:
            body.update(patient=grant.patient, need_patient_banner=False)
        if grant.encounter:
            body["encounter"] = grant.encounter
        if "offline_access" in grant.scopes or "online_access" in grant.scopes:
            refresh = secrets.token_urlsafe(32)
            with self.lock:
                self.refresh[refresh] = grant
            body["refresh_token"] = refresh
        if "openid" in grant.scopes and grant.user:
            body["id_token"] = jwt.encode(
                {"alg": "RS256", "kid": "sandbox"},
                {
                    "iss": self.fhir_base,
                    "sub": grant.user,
                    "aud": grant.client_id,
                    "fhirUser": f"{self.fhir_base}/{grant.user}",
                    "iat": int(time.time()),
                    "exp": int(grant.expires),
                },
                self.signing_key,
                algorithms=ALGORITHMS,
            )
        return body

    def grant_for(self, token: str | None) -> Grant | None:
        grant = self.tokens.get(token or "")
        if grant is None or grant.expires < time.time():
            return None
        return grant


def _credentials(form: dict, basic: tuple[str, str] | None) -> bool:
    """Whether the token request names or authenticates a client at all."""
    return bool(basic or form.get("client_id") or form.get("client_assertion"))


def allows(grant: Grant, rtype: str, action: str) -> tuple[bool, str | None]:
    """Whether the grant's scopes allow ``action`` (c/r/u/d/s) on ``rtype``; with the patient
    the access is limited to when only patient/ scopes allow it."""
    patient_only = None
    for scope in grant.scopes:
        level, _, rest = scope.partition("/")
        if level not in ("patient", "user", "system") or "." not in rest:
            continue
        stype, _, perms = rest.partition(".")
        if stype not in (rtype, "*"):
            continue
        letters = {"read": "rs", "write": "cud", "*": "cruds"}.get(perms, perms)
        if action in letters:
            if level == "patient":
                patient_only = grant.patient
            else:
                return True, None
    return (patient_only is not None), patient_only
