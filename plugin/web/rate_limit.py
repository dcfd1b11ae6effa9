"""Rate limits on the surfaces worth abusing: a token bucket per (endpoint, client).

A client is its launch session where the request may use a live one (its cookie, or a URL id
from the client it is bound to), else its remote address. Limits are counted before any other
check of the request (session, role, CSRF), so refused requests spend the allowance too.
Buckets are keyed by a keyed hash of that, so neither session ids nor addresses are kept in the
clear, and nothing identifying is logged. The app keeps the buckets in its shared database
(``SharedBuckets``), so a limit holds across every server worker, not per worker. Over the
limit: 429 with ``Retry-After``, as an HTML page, a FHIR OperationOutcome (``/fhir/*``) or CDS
Hooks JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from flask import Flask, Response, jsonify, render_template, request

from plugin.web.security import resolve_session
from plugin.web.sessions import SessionStore

log = logging.getLogger(__name__)
# endpoint -> surface; one limit per surface, one bucket per endpoint and client
SURFACES = {
    "smart.launch": "launch",
    "smart.login": "launch",
    "smart.callback": "launch",
    "views.sign_off_view": "actions",
    "views.task_action": "actions",
    "views.queue_bulk": "actions",
    "cds.call": "cds",
    "task_api.search": "task_api",
    "task_api.read": "task_api",
    "task_api.update": "task_api",
    "views.queue": "queue",
    "views.task_page": "queue",
    "views.queue_next": "queue",
    "views.queue_csv": "export",
}
REFRESH = "refresh"  # the review page with ?refresh=1: "Re-read from the chart"


def surface_of(endpoint: str) -> str | None:
    if endpoint == "views.review_page" and request.args.get("refresh") == "1":
        return REFRESH
    return SURFACES.get(endpoint)


class TokenBuckets:
    """``rate`` calls per ``per`` seconds for each key, with bursts of up to ``rate``.

    At most ``max_keys`` buckets are kept (least recently used go first), so a flood of new
    clients cannot grow memory without bound.
    """

    def __init__(
        self,
        rate: int,
        per: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.capacity, self.refill = float(rate), rate / per
        self.clock, self.max_keys = clock, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the call may go ahead (a token is spent), else the seconds until it may."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - last) * self.refill)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.refill
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


_meta = sa.MetaData()
_buckets = sa.Table(
    "rate_buckets",
    _meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("last", sa.Float, nullable=False, index=True),
)


class SharedBuckets:
    """The same token buckets in a database table every server process shares.

    Each take is one conditional UPDATE (atomic in SQLite and PostgreSQL alike), so two
    workers cannot both spend the last token. A bucket untouched for ``per`` seconds is full
    again and is deleted, which bounds the table. ``clock`` must be wall time (``time.time``):
    a monotonic clock is not comparable between processes.
    """

    def __init__(
        self,
        engine: sa.Engine,
        rate: int,
        per: float = 60.0,
        clock: Callable[[], float] = time.time,
        purge_every: float = 60.0,
    ) -> None:
        self.engine, self.capacity, self.refill = engine, float(rate), rate / per
        self.per, self.clock, self.purge_every = per, clock, purge_every
        self._next_purge = 0.0
        _meta.create_all(engine)

    def _refilled(self, now: float):
        grown = _buckets.c.tokens + (now - _buckets.c.last) * self.refill
        return sa.case((grown > self.capacity, self.capacity), else_=grown)

    def take(self, key: str) -> float:
        now = self.clock()
        if now >= self._next_purge:
            self._next_purge = now + self.purge_every
            with self.engine.begin() as conn:
                conn.execute(_buckets.delete().where(_buckets.c.last < now - self.per))
        refilled = self._refilled(now)
        for _ in range(3):  # a lost race on the first insert of a key is retried
            with self.engine.begin() as conn:
                spent = conn.execute(
                    _buckets.update()
                    .where(_buckets.c.key == key, refilled >= 1)
                    .values(tokens=refilled - 1, last=now)
                )
                if spent.rowcount == 1:
                    return 0.0
                left = conn.execute(
                    sa.select(refilled).where(_buckets.c.key == key)
                ).scalar_one_or_none()
            if left is not None:
                return (1 - left) / self.refill
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        _buckets.insert().values(key=key, tokens=self.capacity - 1, last=now)
                    )
                return 0.0
            except sa.exc.IntegrityError:
                continue
        return 1 / self.refill


class RateLimiter:
    """Per-minute limits by surface; a surface with 0 (or absent) is not limited.

    With ``engine`` the buckets live in that (shared) database, else in this process. ``salt``
    keys the hash of each client; processes sharing buckets must share it.
    """

    def __init__(
        self,
        per_minute: Mapping[str, int],
        clock: Callable[[], float] = time.monotonic,
        engine: sa.Engine | None = None,
        salt: bytes | None = None,
    ) -> None:
        self._salt = salt or secrets.token_bytes(32)
        self.buckets = {
            surface: (
                SharedBuckets(engine, rate, 60.0, clock)
                if engine is not None
                else TokenBuckets(rate, 60.0, clock)
            )
            for surface, rate in per_minute.items()
            if rate > 0
        }

    def take(self, surface: str, endpoint: str, client: str) -> float:
        buckets = self.buckets.get(surface)
        if buckets is None:
            return 0.0
        text = f"{surface}\0{endpoint}\0{client}".encode()
        return buckets.take(hmac.new(self._salt, text, hashlib.sha256).hexdigest())


def _client(sessions: SessionStore) -> str:
    found = resolve_session(sessions, touch=False)
    if found.session is not None:  # only a usable session; made-up or copied ids count as none
        return f"sid:{found.sid}"
    return f"addr:{request.remote_addr or ''}"


def too_many(surface: str, retry_after: int) -> Response:
    """The 429 for a surface, in the form its callers read."""
    text = f"Too many requests; try again in {retry_after} second(s)."
    if surface == "task_api":
        from plugin.web.task_api import outcome

        response = outcome(429, "throttled", text)
    elif surface == "cds":
        response = jsonify({"error": text})
        response.status_code = 429
    else:
        response = Response(render_template("error.html", code=429, message=text), status=429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: Flask, limiter: RateLimiter, sessions: SessionStore) -> None:
    """Check the limit before any other work of the request (app hooks run before blueprints')."""

    @app.before_request
    def limit() -> Response | None:
        surface = surface_of(request.endpoint or "")
        if surface is None or surface not in limiter.buckets:
            return None
        wait = limiter.take(surface, request.endpoint, _client(sessions))
        if not wait:
            return None
        log.warning("rate limit reached on %s", surface)
        return too_many(surface, max(1, math.ceil(wait)))
