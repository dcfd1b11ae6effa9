"""The in-process server (demo, sandbox) logs route templates, never paths or queries; the
gunicorn access log of `serve` is tested in tests/test_serve_gunicorn.py."""

from __future__ import annotations

import logging

import requests

from plugin.serving import bind, running
from plugin.web import create_app
from plugin.web.settings import Settings


def test_the_werkzeug_access_log_holds_no_query_or_identifier(caplog):
    app = create_app(
        Settings(testing=True, task_db="sqlite://", outbox_db="sqlite://", session_db="sqlite://")
    )
    server = bind("127.0.0.1", 0, app)
    base = f"http://127.0.0.1:{server.server_port}"
    with caplog.at_level(logging.INFO), running([server]):
        requests.get(f"{base}/review/enc-secret-1?sid=SID-SECRET&code=CODE-SECRET", timeout=10)
        requests.get(f"{base}/callback?code=CODE-SECRET&state=STATE-SECRET", timeout=10)
        requests.get(f"{base}/nowhere/Patient/pat-secret?token=T", timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name in ("werkzeug", "unitguard.access")]
    text = "\n".join(lines)
    assert '"GET /review/<encounter_id>" 401' in text
    assert text.count('"GET (no route)" 404') == 2  # no EHR registered: no /callback here
    for secret in ("SECRET", "enc-", "sid", "code", "?", "Patient", "pat-", "token"):
        assert secret not in text
