"""Launch state kept on the server, keyed by a hash of ``state``: single use, expiring.

The state is bound to the browser that started the launch (a random value in a cookie); the
callback must bring it back (``require_binding``), so a launch finished in another browser, the
login-CSRF attack, is refused. An EHR iframe that drops the cookie cannot finish a launch.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass

import orjson

from smart_launch.errors import StateExpired, StateMismatch


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
    """SQLite-backed (``:memory:`` by default) so several threads and workers can share it."""

    def __init__(self, path: str = ":memory:", ttl_seconds: float = 600.0, clock=time.time) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS launch_state "
            "(key TEXT PRIMARY KEY, created REAL, body BLOB)"
        )
        self._lock = threading.Lock()
        self.ttl, self.clock = ttl_seconds, clock

    def put(self, state: LaunchState) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM launch_state WHERE created < ?", (self.clock() - self.ttl,)
            )
            self._db.execute(
                "INSERT INTO launch_state VALUES (?, ?, ?)",
                (_key(state.state), state.created_at, orjson.dumps(state.to_dict())),
            )

    def consume(
        self, state: str | None, browser_binding: str | None = None, require_binding: bool = True
    ) -> LaunchState:
        """Take the launch state for ``state`` out of the store (it cannot be used twice).
        A state made with a browser binding needs the same binding back; with
        ``require_binding`` a state made without one is refused too."""
        if not state:
            raise StateMismatch("the authorization server returned no state")
        with self._lock:
            row = self._db.execute(
                "DELETE FROM launch_state WHERE key = ? RETURNING body", (_key(state),)
            ).fetchone()
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
