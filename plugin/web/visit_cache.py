"""A short-lived, bounded, per-session cache of fetched visit Bundles for the review page.

Reading one visit costs about 14 FHIR requests; a therapist reloading the review page should
not repeat them. Entries are keyed by keyed hashes of (session id, encounter id), so the cache
holds neither the session id nor the encounter id in the clear, and is never logged.

Each server worker keeps its own Bundles (they stay in memory, never in the database), but a
re-read and a forgotten session are marked in the shared database (``engine``): a worker whose
copy is older than the mark reads the chart again, so "Re-read from the chart" on one worker is
never undone by a stale copy on another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import sqlalchemy as sa

_meta = sa.MetaData()
_marks = sa.Table(
    "visit_reread_marks",
    _meta,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
)


class VisitCache:
    """Bundles by (session, encounter) for ``ttl`` seconds, at most ``size`` of them (LRU).

    ``ttl`` 0 disables the cache: ``get`` always misses and ``put`` keeps nothing.
    ``clock`` returns seconds (monotonic by default; tests pass a fake one).
    """

    def __init__(
        self,
        ttl: float,
        size: int = 256,
        clock: Callable[[], float] = time.monotonic,
        engine: sa.Engine | None = None,
        salt: bytes | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ttl, self.size, self.clock = ttl, max(1, size), clock
        self._salt = salt or secrets.token_bytes(32)
        # key -> (expires, Bundle, wall time of the read)
        self._entries: OrderedDict[tuple[str, str], tuple[float, dict, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.engine, self.wall = engine, wall
        if engine is not None and ttl > 0:
            _meta.create_all(engine)

    def _shared(self) -> bool:
        return self.engine is not None and self.ttl > 0

    def _mark(self, owner: str, key: str) -> float:
        """Record, for every worker, that copies of this visit read before now are stale."""
        now = self.wall()
        changed = _marks.update().where(_marks.c.key == key).values(at=now)
        with self.engine.begin() as conn:
            conn.execute(_marks.delete().where(_marks.c.at < now - self.ttl))
            if conn.execute(changed).rowcount:
                return now
        try:
            with self.engine.begin() as conn:
                conn.execute(_marks.insert().values(key=key, owner=owner, at=now))
        except sa.exc.IntegrityError:  # another worker marked it first
            with self.engine.begin() as conn:
                conn.execute(changed)
        return now

    def _stale(self, key: tuple[str, str], read_at: float) -> bool:
        with self.engine.connect() as conn:
            mark = conn.execute(
                sa.select(_marks.c.at).where(_marks.c.key == key[1])
            ).scalar_one_or_none()
        return mark is not None and mark > read_at

    def _hash(self, *parts: str) -> str:
        return hmac.new(self._salt, "\0".join(parts).encode(), hashlib.sha256).hexdigest()

    def _key(self, sid: str, encounter_id: str) -> tuple[str, str]:
        return self._hash(sid), self._hash(sid, encounter_id)

    def _purge(self, now: float) -> None:
        for key in [k for k, (expires, _, _) in self._entries.items() if expires <= now]:
            del self._entries[key]

    def get(self, sid: str, encounter_id: str) -> dict | None:
        """The cached Bundle, or None when absent, expired or the cache is off."""
        if self.ttl <= 0:
            return None
        key = self._key(sid, encounter_id)
        with self._lock:
            self._purge(self.clock())
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
        if self._shared() and self._stale(key, found[2]):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return found[1]

    def put(self, sid: str, encounter_id: str, bundle: dict, reread: bool = False) -> None:
        """Keep ``bundle`` for ``ttl`` seconds, evicting the least recently used beyond ``size``.
        ``reread``: the chart was read again on purpose; other workers' copies are now stale."""
        if self.ttl <= 0:
            return
        key = self._key(sid, encounter_id)
        read_at = self._mark(*key) if reread and self._shared() else self.wall()
        with self._lock:
            now = self.clock()
            self._purge(now)
            self._entries[key] = (now + self.ttl, bundle, read_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def drop(self, sid: str, encounter_id: str | None = None) -> None:
        """Forget one visit of a session, or (no ``encounter_id``) everything the session read."""
        if encounter_id is not None and self._shared():
            self._mark(*self._key(sid, encounter_id))
        # A whole session is dropped when it has ended: no worker can read its copies again.
        with self._lock:
            if encounter_id is not None:
                self._entries.pop(self._key(sid, encounter_id), None)
                return
            owner = self._hash(sid)
            for key in [k for k in self._entries if k[0] == owner]:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            self._purge(self.clock())
            return len(self._entries)
