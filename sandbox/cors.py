"""CORS for the sandbox's API, as its CapabilityStatement claims (``rest.security.cors``): a
SMART app running in a browser on another origin (SMART's JavaScript client, for one) fetches
the discovery documents, posts to the token endpoint and calls the FHIR API cross-origin.

Every origin is allowed: the API authenticates with bearer tokens, never cookies, so no
credentials are allowed and a page on another origin gains nothing a script could not do.
The authorize endpoint is a page the browser navigates to and needs no CORS.
"""

from __future__ import annotations

from flask import Flask, Response, request

# Paths a browser app calls with fetch/XHR.
CORS_PREFIXES = ("/fhir", "/oauth/token", "/oauth/jwks", "/.well-known/")
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, "
    "If-Modified-Since, Prefer, X-Requested-With"
)
EXPOSE_HEADERS = (
    "Location, Content-Location, ETag, Last-Modified, Retry-After, WWW-Authenticate, X-Progress"
)
MAX_AGE = "600"


def _cross_origin() -> str | None:
    """The request's Origin when the request is one CORS covers here."""
    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith(CORS_PREFIXES):
        return None
    return origin


def install_cors(app: Flask) -> None:
    """Answer preflights before anything else runs (no token, no fault switch applies to
    them) and mark cross-origin answers, errors included, as readable by the caller."""

    def preflight() -> Response | None:
        origin = _cross_origin()
        if (
            origin is None
            or request.method != "OPTIONS"
            or "Access-Control-Request-Method" not in request.headers
        ):
            return None
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response

    def mark(response: Response) -> Response:
        origin = _cross_origin()
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            response.vary.add("Origin")
        return response

    # First in line: the sandbox's own before_request hooks (faults, content negotiation)
    # must not answer a preflight.
    app.before_request_funcs.setdefault(None, []).insert(0, preflight)
    app.after_request(mark)
