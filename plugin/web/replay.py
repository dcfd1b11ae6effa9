"""CDS Hooks JWT ids (``jti``) already used, so that no token is accepted twice.

``SharedSeenTokens`` keeps them in the session database, the one every server worker shares (as
the rate limits do): a token replayed to another worker is refused there too. Each first use is
one INSERT of a keyed row (issuer and jti, hashed: the table holds neither), atomic in SQLite and
PostgreSQL alike, so two workers cannot both accept one token. A row is kept until its token
expires (a CDS Hooks JWT lives at most 5 minutes) and then deleted, which bounds the table.
``SeenTokens`` is the same in one process, for a blueprint made without a database.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

__all__ = ["SeenTokens", "SharedSeenTokens"]

_meta = sa.MetaData()
_seen = sa.Table(
    "cds_seen_jti",
    _meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires", sa.Float, nullable=False, index=True),
)


def _key(issuer: str, jti: str) -> str:
    return hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()


class SeenTokens:
    """jti values already used in this process, kept until their token expires."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self.clock = clock

    def first_use(self, issuer: str, jti: str, expires: float) -> bool:
        now = self.clock()
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            key = _key(issuer, jti)
            if key in self._seen:
                return False
            self._seen[key] = expires
            return True


class SharedSeenTokens:
    """jti values already used by any worker, in a table of the shared database. ``clock``
    must be wall time: the expiry times come from the tokens."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Callable[[], float] = time.time,
        purge_every: float = 60.0,
    ) -> None:
        self.engine, self.clock, self.purge_every = engine, clock, purge_every
        self._next_purge = 0.0
        _meta.create_all(engine)

    def first_use(self, issuer: str, jti: str, expires: float) -> bool:
        now = self.clock()
        with self.engine.begin() as conn:
            if now >= self._next_purge:  # the expired rows of every worker, now and then
                self._next_purge = now + self.purge_every
                conn.execute(_seen.delete().where(_seen.c.expires <= now))
        key = _key(issuer, jti)
        try:
            with self.engine.begin() as conn:
                conn.execute(_seen.delete().where(_seen.c.key == key, _seen.c.expires <= now))
                conn.execute(_seen.insert().values(key=key, expires=expires))
        except sa.exc.IntegrityError:  # another use of this jti, not expired: a replay
            return False
        return True

    def count(self) -> int:
        """Rows kept (for tests and operators)."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(_seen)).scalar() or 0)
