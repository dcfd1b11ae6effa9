"""The Flask application factory; ``unitguard serve`` builds it once and serves it under gunicorn
(``plugin.serving``), after the checks of ``plugin.web.startup``."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from plugin.datadir import open_data_dir
from plugin.serving import log_routes
from plugin.tasks.outbox import Outbox
from plugin.tasks.roster import CoderRoster
from plugin.tasks.store import TaskStore
from plugin.web import rate_limit, security
from plugin.web.body_limit import FORM_MEMORY, FORM_PARTS, BodyLimit
from plugin.web.proxy import trust_proxy
from plugin.web.rate_limit import RateLimiter
from plugin.web.sessions import SessionStore
from plugin.web.settings import Settings
from plugin.web.visit_cache import VisitCache
from plugin.web.visits import VisitSource

log = logging.getLogger(__name__)


def _every(seconds: float, job, name: str, failed: str) -> threading.Event:
    """Run ``job`` every ``seconds`` in a daemon thread until the returned event is set; a
    failure is one log line (``failed`` and the error's type), and the loop goes on."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any failure
                log.error("%s: %s", failed, type(exc).__name__)

    threading.Thread(target=loop, name=name, daemon=True).start()
    return stop


@dataclass
class AppServices:
    """What the views share: stores, the visit source, and the EHR capabilities."""

    settings: Settings
    store: TaskStore
    sessions: SessionStore
    visits: VisitSource
    outbox: Outbox | None = None
    task_capable_issuers: set[str] = field(default_factory=set)
    sender: Any = None
    visit_cache: VisitCache = field(default_factory=lambda: VisitCache(0))
    # Per issuer, the EHR's own procedure codes mapped to CPT ([ehr.codes] map in the EHR list).
    code_maps: dict[str, dict] = field(default_factory=dict)
    registry: Any = None  # the registered EHRs (the landing page offers their logins)
    roster: CoderRoster | None = None  # each EHR's coders, whom a Task may be assigned to
    launch_states: Any = None  # smart_launch's StateStore, when the app serves launches
    revoker: Any = None  # asks the EHR to revoke a session's tokens at logout (launch.py)

    def ehr_accepts_tasks(self, issuer: str) -> bool:
        return issuer in self.task_capable_issuers

    def revoke_tokens(self, session: Any) -> None:
        """Ask the EHR to revoke an ended session's tokens, in the background (best effort)."""
        if self.revoker is not None and session is not None:
            self.revoker.submit(session)

    def deliver_outbox(self) -> None:
        if self.outbox is not None and self.sender is not None:
            self.outbox.deliver(self.sender)

    def sweep(self) -> None:
        """Delete what has expired: sessions (with their EHR tokens) and launch states."""
        self.sessions.sweep()
        if self.launch_states is not None:
            self.launch_states.purge()

    def start_housekeeping(self, every: float = 60.0) -> threading.Event:
        """Sweep expired sessions every ``every`` seconds, so an ended session's tokens are
        deleted within a minute, not kept until someone next signs in; set the event to stop."""
        return _every(every, self.sweep, "sweep", "sweeping expired sessions failed")

    def start_delivery_loop(self, every: float = 30.0) -> threading.Event:
        """Retry pending EHR writes in the background; set the returned event to stop."""
        return _every(every, self.deliver_outbox, "outbox", "outbox delivery failed")


def create_app(
    settings: Settings | None = None,
    visits: VisitSource | None = None,
    registry: Any = None,
    clock: Callable[[], float] | None = None,
    **extra: Any,
) -> Flask:
    """The app. With a registry of EHRs (``settings.ehrs_file`` or ``registry``) it serves the
    SMART launch and reads visits from the launching EHR; ``visits`` overrides that source.
    ``clock`` (seconds) drives session expiry and the visit cache; tests pass a fake one."""
    settings = settings or Settings.from_env()
    if settings.data_dir:
        open_data_dir(settings.data_dir)  # 0700, our files 0600, umask 0077 from here on
    if registry is None and settings.ehrs_file:
        from smart_launch import load_registry

        registry = load_registry(settings.ehrs_file)
    if registry is not None and not settings.frame_ancestors:
        from dataclasses import replace

        origins = tuple(sorted({e.origin for e in registry.ehrs}))
        settings = replace(settings, frame_ancestors=origins)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        TASK_API_TOKENS=settings.task_api_tokens,
        FRAME_ANCESTORS=settings.frame_ancestors,
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_SAMESITE="None" if settings.public_url.startswith("https://") else "Lax",
        MAX_CONTENT_LENGTH=settings.max_body,
        MAX_FORM_MEMORY_SIZE=min(FORM_MEMORY, settings.max_body),
        MAX_FORM_PARTS=FORM_PARTS,
    )
    # An oversized body is refused before Flask, the session or any check sees it; outermost,
    # the proxy's forwarding headers are believed only from the proxy (rate limits, fingerprints).
    app.wsgi_app = BodyLimit(app.wsgi_app, settings.max_body)
    app.wsgi_app = trust_proxy(app.wsgi_app, settings.proxy_hops, settings.proxy_from)
    log_routes(app)  # the access log shows route templates, never paths or queries
    sessions = SessionStore(
        settings.session_db, settings.session_minutes, clock or time.time, settings.idle_minutes
    )
    secure = settings.public_url.startswith("https://")
    launch_states = None
    revoker = None
    if registry is not None:
        from plugin.web.launch import FhirVisitSource, TokenRevoker, install_launch
        from smart_launch import Discovery, StateStore, make_session

        discovery = Discovery(make_session())
        launch_states = StateStore(sessions.engine)
        revoker = TokenRevoker(registry, discovery)
        install_launch(
            app,
            registry,
            sessions,
            discovery,
            launch_states,
            secure,
            settings.public_url,
        )
        if visits is None:
            visits = FhirVisitSource(registry, discovery, sessions)
    if visits is None:
        from plugin.web.visits import StaticVisitSource

        visits = StaticVisitSource({})
    store = TaskStore(settings.task_db)
    roster = CoderRoster(store.engine)
    for ehr in registry.ehrs if registry is not None else ():
        roster.seed(ehr.issuer, ehr.coders)
    services = AppServices(
        settings=settings,
        store=store,
        roster=roster,
        sessions=sessions,
        visits=visits,
        outbox=Outbox(settings.outbox_db),
        visit_cache=VisitCache(
            settings.visit_cache_seconds,
            settings.visit_cache_size,
            clock or time.monotonic,
            engine=sessions.engine,
            salt=hmac.new(settings.secret_key.encode(), b"visit-cache", hashlib.sha256).digest(),
        ),
        code_maps=_code_maps(registry),
        registry=registry,
        launch_states=launch_states,
        revoker=revoker,
        **extra,
    )
    if registry is not None and any(e.quirks.get("backend_key") for e in registry.ehrs):
        from plugin.web.launch import backend_clients, ehr_task_sender

        backends, conditional = backend_clients(registry)
        services.task_capable_issuers = set(backends)
        services.sender = ehr_task_sender(backends, conditional)
        if not settings.testing:
            services.start_delivery_loop()
    if not settings.testing:
        services.start_housekeeping()
    app.extensions["unitguard"] = services
    security.install(app)
    from plugin.web.money import finding_money
    from plugin.web.wording import quote_parts

    app.add_template_global(finding_money, "finding_money")
    app.add_template_global(quote_parts, "quote_parts")
    # Buckets in the session database, keyed with a salt every worker derives alike: a limit
    # holds across all the server's workers.
    salt = hmac.new(settings.secret_key.encode(), b"rate-limit", hashlib.sha256).digest()
    limiter = RateLimiter(
        settings.rate_per_minute(), clock or time.time, engine=sessions.engine, salt=salt
    )
    rate_limit.install(app, limiter, sessions)

    from plugin.web.cds_hooks import create_cds_blueprint, load_cds_clients
    from plugin.web.replay import SharedSeenTokens
    from plugin.web.task_api import create_task_api
    from plugin.web.views import bp as views

    app.register_blueprint(views)
    app.register_blueprint(create_task_api(services.store, settings.public_url))
    # jti values in the session database too: a CDS Hooks JWT is accepted once by all workers.
    seen = SharedSeenTokens(sessions.engine)
    app.register_blueprint(
        create_cds_blueprint(load_cds_clients(registry), settings.public_url, seen)
    )

    from smart_launch.jwks import public_jwks

    jwks = public_jwks(settings.private_key)

    @app.get("/.well-known/jwks.json")
    def jwks_document():
        return jwks

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render_template("error.html", code=exc.code, message=exc.description), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.error("unexpected error: %s", type(exc).__name__)
        return render_template(
            "error.html",
            code=500,
            message="Something went wrong; nothing was saved twice. Try "
            "again, or tell your administrator.",
        ), 500

    return app


def _code_maps(registry: Any) -> dict[str, dict]:
    """Each registered EHR's code map, read once at start (a bad file stops the start)."""
    if registry is None:
        return {}
    from plugin.fhir.codemap import load_code_map

    return {e.issuer: load_code_map(e.codes["map"]) for e in registry.ehrs if e.codes.get("map")}
