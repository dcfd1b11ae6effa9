"""Server-side launch sessions: the browser holds only an opaque id, never a token.

In an EHR iframe the browser may drop third-party cookies, so the id also travels in the URL
(``sid``) of the app's own links and forms; the id is random and says nothing about the patient.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import orjson
import sqlalchemy as sa

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

    def __repr__(self) -> str:  # never show tokens in logs or tracebacks
        return f"LaunchSession(iss={self.iss!r}, role={self.role!r})"


class SessionStore:
    def __init__(self, url: str, minutes: int = 60, clock: Callable[[], float] = time.time) -> None:
        self.engine = make_engine(url)
        meta.create_all(self.engine)
        self.ttl = minutes * 60
        self.clock = clock

    def create(self, session: LaunchSession) -> str:
        sid = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.expires < self.clock()))
            conn.execute(
                table.insert().values(
                    id=sid, expires=self.clock() + self.ttl, data=orjson.dumps(asdict(session))
                )
            )
        return sid

    def get(self, sid: str | None) -> LaunchSession | None:
        if not sid:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == sid)).first()
        if row is None or row.expires < self.clock():
            return None
        return LaunchSession(**orjson.loads(row.data))

    def save(self, sid: str, session: LaunchSession) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                table.update().where(table.c.id == sid).values(data=orjson.dumps(asdict(session)))
            )

    def delete(self, sid: str | None) -> None:
        """End a session (logout): its id is refused from now on, in a cookie or a URL."""
        if not sid:
            return
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id == sid))
