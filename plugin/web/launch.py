"""Connect the SMART launch to the app: registered EHRs, the session, and the visit source."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from flask import Flask, abort, redirect, url_for

from plugin.ehr import FetchError, fetch_visit
from plugin.errors import InputError
from plugin.tasks.names import human_name
from plugin.web.roles import CLINICIAN, CODER, is_coder, relative_reference
from plugin.web.security import client_fingerprint, set_session_cookie
from plugin.web.sessions import LaunchSession, SessionStore
from smart_launch import (
    Discovery,
    FhirClient,
    FhirError,
    LaunchContext,
    RegisteredEhr,
    Registry,
    StateStore,
    TokenSet,
    make_session,
    refresh,
    revoke,
)
from smart_launch.flask import create_blueprint

log = logging.getLogger(__name__)
MAX_NAME_READS = 20  # listed coders' names read at one coder's sign-in, at most


class FhirVisitSource:
    """Fetch the visit from the EHR that launched us, with that launch's own token."""

    def __init__(self, registry: Registry, discovery: Discovery, sessions: SessionStore) -> None:
        self.registry, self.discovery, self.sessions = registry, discovery, sessions
        self.http = make_session()

    def fetch(self, session: LaunchSession, encounter_id: str) -> dict:
        ehr = self.registry.find_by_issuer(session.iss)
        tokens = TokenSet.from_dict(session.token)

        def renew() -> None:
            fresh = refresh(ehr, self.discovery.get(ehr.issuer), tokens)
            tokens.access_token, tokens.expires_at = fresh.access_token, fresh.expires_at
            tokens.refresh_token = fresh.refresh_token

        if tokens.expires_soon() and tokens.refresh_token:
            renew()
        client = FhirClient(
            ehr.issuer, token=lambda: tokens.access_token, refresh=renew, session=self.http
        )
        try:
            return fetch_visit(client, encounter_id, binary_hosts=ehr.binary_hosts)
        except (FhirError, FetchError) as exc:
            raise InputError(f"the EHR could not give this visit: {exc}") from exc
        finally:
            session.token = tokens.to_dict()


class TokenRevoker:
    """At logout, the EHR is asked to revoke the session's tokens (RFC 7009), where its SMART
    configuration offers a ``revocation_endpoint``. Best effort and never in the way: it runs in
    a small pool after the session is already gone, each request with a short timeout, and a
    failure is one log line naming only the token type."""

    def __init__(self, registry: Registry, discovery: Discovery) -> None:
        self.registry, self.discovery = registry, discovery
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="revoke")
        self._futures: list[Future] = []

    def submit(self, session: LaunchSession) -> Future | None:
        if not session.token:
            return None
        self._futures = [f for f in self._futures if not f.done()]
        future = self.pool.submit(self._revoke, session.iss, TokenSet.from_dict(session.token))
        self._futures.append(future)
        return future

    def _revoke(self, issuer: str, tokens: TokenSet) -> list[str]:
        try:
            ehr = self.registry.find_by_issuer(issuer)
            failed = revoke(ehr, self.discovery.get(ehr.issuer), tokens)
        except Exception as exc:  # noqa: BLE001 - logout has happened; only say it
            log.warning("token revocation not attempted: %s", type(exc).__name__)
            return ["all"]
        for hint in failed:
            log.warning("token revocation failed: %s", hint)
        return failed

    def wait(self) -> None:
        """Until the revocations asked for so far are done (tests; a clean shutdown)."""
        wait(list(self._futures))


def install_launch(
    app: Flask,
    registry: Registry,
    sessions: SessionStore,
    discovery: Discovery,
    states: StateStore,
    secure: bool,
    public_url: str = "",
) -> None:
    """``public_url`` (``UNITGUARD_PUBLIC_URL``) makes the redirect URI; never the Host header."""

    http = make_session()

    def roles_of(ehr: RegisteredEhr, tokens: TokenSet):
        def read(user: str) -> list[dict]:
            client = FhirClient(ehr.issuer, token=lambda: tokens.access_token, session=http)
            try:
                if user.startswith("PractitionerRole/"):
                    return [client.read("PractitionerRole", user.split("/", 1)[1])]
                return list(client.search("PractitionerRole", {"practitioner": user}).resources)
            except FhirError as exc:
                log.warning("PractitionerRole lookup failed: %s", type(exc).__name__)
                return []

        return read

    def name_of(ehr: RegisteredEhr, tokens: TokenSet, user: str | None) -> str | None:
        """The signed-in user's name (for the Task history); None when the EHR will not say."""
        if not user or not user.startswith(("Practitioner/", "PractitionerRole/")):
            return None
        client = FhirClient(ehr.issuer, token=lambda: tokens.access_token, session=http)
        try:
            resource = client.read(*user.split("/", 1))
            if resource.get("resourceType") == "PractitionerRole":
                ref = (resource.get("practitioner") or {}).get("reference") or ""
                if not ref.startswith("Practitioner/"):
                    return None
                resource = client.read(*ref.split("/", 1))
        except FhirError:
            return None
        return human_name(resource)

    def know_coders(ehr: RegisteredEhr, tokens: TokenSet, user: str, name: str | None) -> None:
        """Keep the signed-in coder in the EHR's roster, and read the names of listed coders
        not named yet (a few reads with this coder's token)."""
        roster = app.extensions["unitguard"].roster
        roster.record(ehr.issuer, user, name, "list" if user in ehr.coders else "role")
        for other in roster.unnamed(ehr.issuer)[:MAX_NAME_READS]:
            found = name_of(ehr, tokens, other)
            if found:
                roster.record(ehr.issuer, other, found, "list")

    def on_launched(ehr: RegisteredEhr, tokens: TokenSet, context: LaunchContext):
        user = relative_reference(context.fhir_user, ehr.issuer)
        if context.patient:  # a clinician's launch: this patient's visit only
            launch = LaunchSession(
                iss=ehr.issuer,
                patient=f"Patient/{context.patient}",
                encounter=f"Encounter/{context.encounter}",
                fhir_user=user,
                token=tokens.to_dict(),
                role=CLINICIAN,
                user_name=name_of(ehr, tokens, user),
            )
            # the id rides in this one URL for iframes that drop the cookie; once the cookie
            # comes back the app's links leave it out and the bare id is refused
            sid = sessions.create(launch, client=client_fingerprint())
            target = url_for(
                "views.review_page", encounter_id=context.encounter, sid=sid, t=int(time.time())
            )
        else:  # no patient: the EHR's menu or a standalone sign-in, for coders only
            if not user:
                abort(403, description="The EHR did not say who you are (fhirUser); sign in again.")
            if not is_coder(user, ehr.coders, ehr.coder_role_codes, roles_of(ehr, tokens)):
                log.info("launch without patient refused: not a coder")
                abort(
                    403,
                    description="The coding work queue is for coders. Ask your administrator "
                    "to add your account to this EHR's coder list, or open unitguard from a "
                    "patient's visit.",
                )
            launch = LaunchSession(
                iss=ehr.issuer,
                fhir_user=user,
                token=tokens.to_dict(),
                role=CODER,
                user_name=name_of(ehr, tokens, user),
            )
            know_coders(ehr, tokens, user, launch.user_name)
            sid = sessions.create(launch, client=client_fingerprint())
            target = url_for("views.queue", sid=sid)
        response = redirect(target)
        set_session_cookie(response, sid, secure)
        return response

    app.register_blueprint(
        create_blueprint(
            registry,
            discovery,
            states,
            on_launched,
            secure_cookies=secure,
            redirect_uri=f"{public_url.rstrip('/')}/callback" if public_url else None,
        )
    )


def task_support(statement: dict) -> tuple[bool, bool]:
    """(Task create allowed, conditional create supported) from a CapabilityStatement."""
    for rest in statement.get("rest") or []:
        for resource in rest.get("resource") or []:
            if resource.get("type") == "Task":
                codes = {i.get("code") for i in resource.get("interaction") or []}
                return "create" in codes, bool(resource.get("conditionalCreate"))
    return False, False


def ehr_task_sender(backends: dict, conditional: dict[str, bool] | None = None):
    """The outbox's sender. Where the EHR supports conditional create, one POST with
    If-None-Exist; where it does not, our own de-duplication: search the Task by identifier,
    then create or update. A re-signed visit updates the Task with If-Match. ``backends`` maps
    an issuer to its SMART Backend Services client (a user's launch token is never kept)."""
    conditional = conditional or {}

    def send(issuer: str, task: dict) -> None:
        backend = backends[issuer]
        client = FhirClient(
            issuer, token=backend.token, refresh=backend.invalidate, session=make_session()
        )
        ident = task["identifier"][0]
        token = f"{ident['system']}|{ident['value']}"
        if conditional.get(issuer, True):
            existing, created = client.create(task, if_none_exist=f"identifier={token}")
            found = None if created else existing
        else:
            matches = client.search("Task", {"identifier": token}).resources
            found = matches[0] if matches else None
            if found is None:
                client.create(task)
        if found and found.get("id"):
            current, etag = client.read_with_etag("Task", found["id"])
            client.update({**task, "id": current["id"]}, if_match=etag)

    return send


def backend_clients(registry: Registry) -> tuple[dict, dict[str, bool]]:
    """Backend Services clients for the EHRs whose CapabilityStatement allows Task create and
    whose entry names a key (``[ehr.quirks] backend_key`` PEM path, ``backend_client_id``);
    with, per issuer, whether the EHR supports conditional create."""
    from smart_launch.backend import BackendServices

    clients, conditional = {}, {}
    http = make_session()
    discovery = Discovery(http)
    for ehr in registry.ehrs:
        quirks = ehr.quirks
        if not quirks.get("backend_key"):
            continue
        try:
            creates, cond = task_support(FhirClient(ehr.issuer, session=http).capabilities())
        except FhirError:
            continue  # unreachable at start: Tasks stay in our own store
        if creates:
            clients[ehr.issuer] = BackendServices.from_pem_file(
                discovery.get(ehr.issuer).token_endpoint,
                quirks.get("backend_client_id", ehr.client_id),
                quirks["backend_key"],
                "system/Task.cruds",
            )
            conditional[ehr.issuer] = cond
    return clients, conditional
