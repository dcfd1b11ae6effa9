"""Security headers on every response, iframe-safe cookies, CSRF on every form."""

from __future__ import annotations

import hmac

from flask import Flask, Response, abort, request

SESSION_COOKIE = "ug_sid"


def frame_ancestors(app: Flask) -> str:
    origins = app.config.get("FRAME_ANCESTORS") or ()
    return " ".join(origins) if origins else "'none'"


def install(app: Flask) -> None:
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
    """The session id the request carries: in the app's own links, its forms, or the cookie."""
    return request.args.get("sid") or request.form.get("sid") or request.cookies.get(SESSION_COOKIE)


def check_csrf(expected: str) -> None:
    sent = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="The form expired or did not come from unitguard; reload the page.")
