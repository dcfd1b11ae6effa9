"""Server-side launch sessions: the browser holds only an opaque id, never a token.

In an EHR iframe the browser may drop third-party cookies; only then does the id travel in the
URL (``sid``) of the app's own links, and such a URL id is honoured only from the client the
session was made for (see ``plugin.web.security.resolve_session``). The id is random and says
nothing about the patient. A session ends after ``idle`` seconds without a request, and in any
case ``ttl`` seconds after it began.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import orjson
import sqlalchemy as sa

from plugin import schema
from plugin.db import make_engine

meta = sa.MetaData()
table = sa.Table(
    "sessions",
    meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("expires", sa.Float, nullable=False, index=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)


@dataclass
class LaunchSession:
    """What one launch established: the EHR, the launch context and the server-side token."""

    iss: str
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token: dict = field(default_factory=dict)  # TokenSet fields; never sent to the browser
    role: str = "therapist"  # or "coder"
    user_name: str | None = None  # the signed-in user's name, for the Task history
    # the client it is bound to: a keyed hash of its address and User-Agent (never the values)
    client: str = ""
    cookie_seen: bool = False  # the browser sent the session cookie back at least once
    created: float = 0.0

    def __repr__(self) -> str:  # never show tokens in logs or tracebacks
        return f"LaunchSession(iss={self.iss!r}, role={self.role!r})"


class SessionStore:
    """``expires`` of a row is the earlier of its absolute end (``created + ttl``) and its idle
    end (last request + ``idle``); each request that finds the session moves the idle end."""

    def __init__(
        self,
        url: str,
        minutes: int = 60,
        clock: Callable[[], float] = time.time,
        idle_minutes: float = 15,
    ) -> None:
        self.engine = make_engine(url)
        schema.prepare(self.engine)
        self.ttl = minutes * 60
        self.idle = idle_minutes * 60
        self.clock = clock

    def _deadline(self, session: LaunchSession, now: float) -> float:
        return min(session.created + self.ttl, now + self.idle)

    def create(self, session: LaunchSession, client: str = "") -> str:
        """Store ``session`` bound to ``client`` (``security.client_fingerprint()``)."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        session.created, session.client = now, client or session.client
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.expires < now))
            conn.execute(
                table.insert().values(
                    id=sid, expires=self._deadline(session, now), data=orjson.dumps(asdict(session))
                )
            )
        return sid

    def get(self, sid: str | None, touch: bool = True) -> LaunchSession | None:
        """The live session, or None (unknown, idle too long, or past its lifetime). With
        ``touch`` the request counts as activity and moves the idle end."""
        if not sid:
            return None
        now = self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == sid)).first()
        if row is None or row.expires < now:
            return None
        session = LaunchSession(**orjson.loads(row.data))
        deadline = self._deadline(session, now)
        if touch and deadline > row.expires:
            with self.engine.begin() as conn:
                conn.execute(
                    table.update()
                    .where(table.c.id == sid, table.c.expires >= now)
                    .values(expires=deadline)
                )
        return session

    def save(self, sid: str, session: LaunchSession) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                table.update().where(table.c.id == sid).values(data=orjson.dumps(asdict(session)))
            )

    def sweep(self) -> int:
        """Delete every session past its end, tokens and all; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(table.delete().where(table.c.expires < self.clock())).rowcount

    def delete(self, sid: str | None) -> None:
        """End a session (logout): its id is refused from now on, in a cookie or a URL."""
        if not sid:
            return
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id == sid))
