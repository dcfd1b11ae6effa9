"""Where the review page gets a visit's Bundle: the EHR behind the launch (or a test stand-in)."""

from __future__ import annotations

from typing import Protocol

from plugin.web.sessions import LaunchSession


class VisitSource(Protocol):
    def fetch(self, session: LaunchSession, encounter_id: str) -> dict:
        """The Bundle of one visit and its history, read with the session's own token."""


class StaticVisitSource:
    """Bundles held in memory by encounter id (tests, and offline demos of the page)."""

    def __init__(self, bundles: dict[str, dict]) -> None:
        self.bundles = bundles

    def fetch(self, session: LaunchSession, encounter_id: str) -> dict:
        return self.bundles[encounter_id]
