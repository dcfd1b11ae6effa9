"""Security headers on every response, iframe-safe cookies, CSRF on every form."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response, abort, current_app, g, request

if TYPE_CHECKING:
    from plugin.web.sessions import LaunchSession, SessionStore

SESSION_COOKIE = "ug_sid"


def frame_ancestors(app: Flask) -> str:
    origins = app.config.get("FRAME_ANCESTORS") or ()
    return " ".join(origins) if origins else "'none'"


def install(app: Flask) -> None:
    @app.context_processor
    def form_session() -> dict:
        # POST forms carry the id in their body (never logged, never in history or a Referer)
        return {"form_sid": g.get("sid") or ""}

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"form-action 'self'; base-uri 'none'; object-src 'none'; "
            f"frame-ancestors {frame_ancestors(app)}"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if request.is_secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response


def set_session_cookie(response: Response, sid: str, secure: bool) -> None:
    """SameSite=None so the cookie survives inside the EHR's iframe (needs Secure)."""
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        secure=secure,
        samesite="None" if secure else "Lax",
        path="/",
    )


def request_sid() -> str | None:
    """The session id the request carries: in the app's own links, its forms, or the cookie
    (unchecked: ``resolve_session`` decides whether it may be used)."""
    return request.args.get("sid") or request.form.get("sid") or request.cookies.get(SESSION_COOKIE)


def client_fingerprint() -> str:
    """What a session id sent without its cookie is bound to: a keyed hash (the app's secret)
    of the client's address and User-Agent. Behind a reverse proxy the address is the proxy's
    unless ProxyFix is configured; then the User-Agent alone tells clients apart."""
    seen = f"{request.remote_addr or ''}\0{request.headers.get('User-Agent', '')}"
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, seen.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Resolved:
    """The request's session: its id, the session, the id to put in GET links (None when the
    cookie works) and, when an id was refused, why."""

    sid: str | None = None
    session: LaunchSession | None = None
    url_sid: str | None = None
    refused: str | None = None


def resolve_session(sessions: SessionStore, touch: bool = True) -> Resolved:
    """Which session the request may use.

    - The cookie, when the browser sends it; a different id in the URL or form is refused.
    - An id in the URL or form without the cookie (an EHR iframe that drops cookies) only from
      the client the session was made for (``client_fingerprint``), and never once that
      browser has shown it keeps the cookie: then a bare id can only be a copy.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    sent = request.args.get("sid") or request.form.get("sid")
    if cookie and sent and not hmac.compare_digest(cookie, sent):
        return Resolved(refused="the session id in the link is not this browser's")
    if cookie:
        session = sessions.get(cookie, touch)
        if session is not None and not session.cookie_seen:
            session.cookie_seen = True
            sessions.save(cookie, session)
        return Resolved(cookie, session, None)
    if not sent:
        return Resolved()
    session = sessions.get(sent, touch=False)
    if session is None:
        return Resolved(sent, None, None)
    if session.cookie_seen:
        return Resolved(refused="this session is used with its cookie; a bare id is refused")
    if not session.client or not hmac.compare_digest(session.client, client_fingerprint()):
        return Resolved(refused="the session id was made for another client")
    if touch:
        sessions.get(sent)
    return Resolved(sent, session, sent)


def check_csrf(expected: str) -> None:
    sent = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="The form expired or did not come from unitguard; reload the page.")
