"""A short-lived, bounded, per-session cache of fetched visit Bundles for the review page.

Reading one visit costs about 14 FHIR requests; a therapist reloading the review page should
not repeat them. Entries are keyed by keyed hashes of (session id, encounter id), so the cache
holds neither the session id nor the encounter id in the clear, and is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class VisitCache:
    """Bundles by (session, encounter) for ``ttl`` seconds, at most ``size`` of them (LRU).

    ``ttl`` 0 disables the cache: ``get`` always misses and ``put`` keeps nothing.
    ``clock`` returns seconds (monotonic by default; tests pass a fake one).
    """

    def __init__(
        self, ttl: float, size: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.size, self.clock = ttl, max(1, size), clock
        self._salt = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, str], tuple[float, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def _hash(self, *parts: str) -> str:
        return hmac.new(self._salt, "\0".join(parts).encode(), hashlib.sha256).hexdigest()

    def _key(self, sid: str, encounter_id: str) -> tuple[str, str]:
        return self._hash(sid), self._hash(sid, encounter_id)

    def _purge(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
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
            return found[1]

    def put(self, sid: str, encounter_id: str, bundle: dict) -> None:
        """Keep ``bundle`` for ``ttl`` seconds, evicting the least recently used beyond ``size``."""
        if self.ttl <= 0:
            return
        key = self._key(sid, encounter_id)
        with self._lock:
            now = self.clock()
            self._purge(now)
            self._entries[key] = (now + self.ttl, bundle)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def drop(self, sid: str, encounter_id: str | None = None) -> None:
        """Forget one visit of a session, or (no ``encounter_id``) everything the session read."""
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
