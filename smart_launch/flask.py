"""The only Flask code of smart_launch: a Blueprint with /launch and /callback.

The launch state lives on the server keyed by ``state``; a browser-binding cookie is set with
SameSite=None; Secure and required at the callback: a launch finished in another browser (login
CSRF: an attacker's own authorization code fed to the victim) is refused.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from flask import Blueprint, Response, abort, redirect, request, url_for

from smart_launch.discovery import Discovery
from smart_launch.errors import SmartLaunchError, authorization_denied
from smart_launch.flow import finish_launch, start_launch
from smart_launch.registry import RegisteredEhr, Registry
from smart_launch.state import StateStore
from smart_launch.tokens import LaunchContext, TokenSet

log = logging.getLogger(__name__)
BINDING_COOKIE = "ug_launch"
# (ehr, tokens, context) -> the response that ends the launch (e.g. a redirect to the review)
OnLaunched = Callable[[RegisteredEhr, TokenSet, LaunchContext], Response]


def create_blueprint(
    registry: Registry,
    discovery: Discovery,
    states: StateStore,
    on_launched: OnLaunched,
    secure_cookies: bool = True,
    redirect_uri: str | None = None,
) -> Blueprint:
    """``redirect_uri``: the app's registered callback URL, from its configured public URL
    (without it, built from the request, i.e. from the Host header: only for tests)."""
    bp = Blueprint("smart", __name__)

    def fail(exc: SmartLaunchError, status: int = 400):
        log.warning("launch refused: %s", exc.error)
        abort(status, description=exc.description)

    def begin(iss: str | None, launch_id: str | None, sign_in: bool):
        try:
            ehr = registry.find_by_issuer(iss)  # allowlist first: no request to unknown hosts
            if not launch_id and not sign_in:
                raise SmartLaunchError("the EHR did not send a launch value", "invalid_request")
            config = discovery.get(ehr.issuer)
            binding = secrets.token_urlsafe(16)
            started = start_launch(
                ehr,
                config,
                states,
                redirect_uri or url_for("smart.callback", _external=True),
                launch=launch_id,
                browser_binding=binding,
                sign_in=sign_in,
            )
        except SmartLaunchError as exc:
            return fail(exc)
        response = redirect(started.url)
        response.set_cookie(
            BINDING_COOKIE,
            binding,
            max_age=600,
            httponly=True,
            secure=secure_cookies,
            samesite="None" if secure_cookies else "Lax",
        )
        return response

    @bp.get("/launch")
    def launch():
        return begin(request.args.get("iss"), request.args.get("launch"), sign_in=False)

    @bp.get("/login")
    def login():
        """A standalone sign-in (a coder's, without patient context) at the EHR ``iss``."""
        if not request.args.get("iss"):
            return redirect(url_for("views.landing"))
        return begin(request.args.get("iss"), None, sign_in=True)

    @bp.get("/callback")
    def callback():
        try:
            if request.args.get("error"):  # its description is never shown: anyone can write it
                raise authorization_denied(request.args["error"])
            state = states.consume(
                request.args.get("state"),
                browser_binding=request.cookies.get(BINDING_COOKIE),
                require_binding=True,
            )
            ehr = registry.find_by_issuer(state.iss)
            tokens, context = finish_launch(
                ehr,
                discovery.get(ehr.issuer),
                state,
                request.args.to_dict(),
                require_patient=False,  # without a patient: a coder's launch, checked by the app
            )
        except SmartLaunchError as exc:
            return fail(exc, 401 if exc.error in ("state_mismatch", "state_expired") else 400)
        response = on_launched(ehr, tokens, context)
        response.delete_cookie(BINDING_COOKIE)
        return response

    return bp
