"""The sandbox EHR as a Flask app: FHIR API under /fhir, SMART endpoints, the chart page."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from sandbox.access import bearer
from sandbox.bulk import install_bulk
from sandbox.capability import install_capability
from sandbox.chart import install_chart
from sandbox.cors import install_cors
from sandbox.outcome import FHIR_JSON, outcome
from sandbox.reads import install_reads
from sandbox.smart_endpoints import install_smart
from sandbox.state import Sandbox
from sandbox.writes import install_writes

log = logging.getLogger(__name__)
JSON_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")
JSON_FORMATS = ("json", *JSON_TYPES)
NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson")  # Bulk Data files
OUTCOME_CODES = {404: "not-found", 405: "not-supported", 406: "not-supported"}


def create_app(sandbox: Sandbox, base_url: str) -> Flask:
    app = Flask(__name__)
    app.extensions["sandbox"] = sandbox
    fhir = base_url.rstrip("/") + "/fhir"

    @app.before_request
    def misbehave():
        if not request.path.startswith("/fhir") or ".well-known" in request.path:
            return None
        faults = sandbox.faults
        if faults.delay:
            time.sleep(faults.delay)
        if faults.throttle > 0:
            faults.throttle -= 1
            response = outcome(429, "throttled", "too many requests")
            response.headers["Retry-After"] = str(faults.retry_after)
            return response
        if faults.fail > 0:
            faults.fail -= 1
            return outcome(500, "exception", "simulated server failure")
        return None

    @app.before_request
    def negotiate():
        """JSON only, as both vendors' sandboxes are used here: asking for XML gets 406."""
        if not request.path.startswith("/fhir") or ".well-known" in request.path:
            return None
        wanted = request.args.get("_format")
        if wanted is not None and wanted.split(";")[0].strip() not in JSON_FORMATS:
            return outcome(406, "not-supported", f"_format {wanted} is not served: JSON only")
        accept = request.accept_mimetypes
        if accept and not any(accept.quality(t) for t in JSON_TYPES + NDJSON_TYPES):
            return outcome(406, "not-supported", "only application/fhir+json is served")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Under /fhir every error is an OperationOutcome (404 unknown path, 405 method...)."""
        if not request.path.startswith("/fhir") or (exc.code or 500) < 400:
            return exc
        status = exc.code or 500
        text = f"{request.method} {request.path}: {exc.name}"
        return outcome(status, OUTCOME_CODES.get(status, "processing"), text)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("sandbox error")
        if not request.path.startswith("/fhir"):
            return Response("internal error", status=500, mimetype="text/plain")
        return outcome(500, "exception", "the sandbox failed on this request")

    install_smart(app, sandbox, fhir, base_url)
    install_capability(app, sandbox, fhir, base_url)
    install_reads(app, sandbox, fhir)
    install_writes(app, sandbox, fhir)
    install_chart(app, sandbox, fhir)
    install_bulk(app, sandbox, fhir, outcome, lambda: sandbox.grants.grant_for(bearer()))
    install_cors(app)
    return app
