"""Launch state kept on the server, keyed by a hash of ``state``: single use, expiring.

The state is bound to the browser that started the launch (a random value in a cookie); the
callback must bring it back (``require_binding``), so a launch finished in another browser, the
login-CSRF attack, is refused. An EHR iframe that drops the cookie cannot finish a launch.

The store is a database table (SQLAlchemy): give it the app's shared database so a launch
started on one server worker can finish on another. Without one it keeps an in-memory table
for this process only.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from smart_launch.errors import StateExpired, StateMismatch

_meta = sa.MetaData()
_table = sa.Table(
    "launch_state",
    _meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
)


@dataclass(frozen=True)
class LaunchState:
    state: str
    code_verifier: str
    iss: str
    redirect_uri: str
    created_at: float
    launch: str | None = None
    browser_binding: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LaunchState:
        return cls(**data)

    def __repr__(self) -> str:
        return f"LaunchState(iss={self.iss!r})"


def _key(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class StateStore:
    """``engine``: the database every server process shares (SQLite file or PostgreSQL);
    ``None`` keeps the states in this process's memory (one process only)."""

    def __init__(
        self, engine: sa.Engine | None = None, ttl_seconds: float = 600.0, clock=time.time
    ) -> None:
        if engine is None:
            engine = sa.create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            self._lock = threading.Lock()  # one shared connection: one transaction at a time
        else:
            self._lock = nullcontext()
        self.engine = engine
        _meta.create_all(engine)
        self.ttl, self.clock = ttl_seconds, clock

    def put(self, state: LaunchState) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(_table.delete().where(_table.c.created < self.clock() - self.ttl))
            conn.execute(
                _table.insert().values(
                    key=_key(state.state),
                    created=state.created_at,
                    body=orjson.dumps(state.to_dict()),
                )
            )

    def purge(self) -> int:
        """Delete the launch states older than the time a launch may take; returns how many."""
        with self._lock, self.engine.begin() as conn:
            old = _table.c.created < self.clock() - self.ttl
            return conn.execute(_table.delete().where(old)).rowcount

    def consume(
        self, state: str | None, browser_binding: str | None = None, require_binding: bool = True
    ) -> LaunchState:
        """Take the launch state for ``state`` out of the store (it cannot be used twice, even
        by two processes at once: the row is deleted and returned in one statement). A state
        made with a browser binding needs the same binding back; with ``require_binding`` a
        state made without one is refused too."""
        if not state:
            raise StateMismatch("the authorization server returned no state")
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(
                _table.delete().where(_table.c.key == _key(state)).returning(_table.c.body)
            ).first()
        if row is None:
            raise StateMismatch("unknown or already used state: start the launch again")
        found = LaunchState.from_dict(orjson.loads(row[0]))
        if not hmac.compare_digest(found.state, state):
            raise StateMismatch("state does not match")
        if self.clock() - found.created_at > self.ttl:
            raise StateExpired("the launch took too long: start it again from the chart")
        if found.browser_binding or require_binding:
            if not (
                browser_binding
                and found.browser_binding
                and hmac.compare_digest(browser_binding, found.browser_binding)
            ):
                raise StateMismatch("this launch was started in another browser")
        return found
