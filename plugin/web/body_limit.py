"""Refuse request bodies over ``UNITGUARD_MAX_BODY`` bytes before anything reads them.

A WSGI middleware in front of Flask: a declared ``Content-Length`` over the limit gets 413 at
once (no byte of the body is read, no session looked up, no credential checked) and the
connection is closed, so the server does not read the rest either. A body sent without a
length (chunked) is cut off by Flask's ``MAX_CONTENT_LENGTH`` as it is read. Forms are capped
separately and much lower (``FORM_MEMORY``, ``FORM_PARTS``): the app's forms are a few fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

DEFAULT_MAX_BODY = 1024 * 1024
FORM_MEMORY = 64 * 1024  # bytes of url-encoded form, or of one multipart field
FORM_PARTS = 50  # multipart parts


def _refusal(path: str, status: str, text: str) -> tuple[str, bytes]:
    if path.startswith("/fhir"):
        code = "too-costly" if status.startswith("413") else "invalid"
        body = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}],
        }
        return "application/fhir+json", orjson.dumps(body)
    if path.startswith("/cds-services"):
        return "application/json", orjson.dumps({"error": text})
    return "text/plain; charset=utf-8", text.encode()


class BodyLimit:
    def __init__(self, app: Callable, limit: int = DEFAULT_MAX_BODY) -> None:
        self.app, self.limit = app, limit

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        if not declared:
            return self.app(environ, start_response)
        if not declared.isdigit():
            return self._refuse(environ, start_response, "400 Bad Request", "Bad Content-Length.")
        if int(declared) > self.limit:
            return self._refuse(
                environ,
                start_response,
                "413 Request Entity Too Large",
                f"The request body is over {self.limit} bytes; nothing was read.",
            )
        return self.app(environ, start_response)

    def _refuse(self, environ: dict, start_response: Callable, status: str, text: str):
        kind, body = _refusal(environ.get("PATH_INFO") or "", status, text)
        start_response(
            status,
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),  # the unread body is not read to find the next request
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
            ],
        )
        return [body]
