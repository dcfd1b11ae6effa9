"""Shared pieces of the web tests: a fake clock and the defective visit most pages show."""

from __future__ import annotations

import pytest

from plugin.synthetic.visit import VisitBuilder


class FakeClock:
    """A clock the test moves by hand (``clock.now += 61``) instead of sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def defective():
    """97112 billed 3 units for 24 minutes, note unsigned: two error findings."""
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 3)
    return b.bundle()


@pytest.fixture
def clock():
    return FakeClock()


def bound_session(app, session) -> str:
    """Store ``session`` bound to the Flask test client, as a launch from that client binds it
    (an id in the URL is honoured only from the client the session was made for)."""
    from plugin.web.security import client_fingerprint

    with app.test_request_context(environ_base=app.test_client().environ_base):
        return app.extensions["unitguard"].sessions.create(session, client=client_fingerprint())
