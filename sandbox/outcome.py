"""OperationOutcome responses: how the sandbox's FHIR API reports every error."""

from __future__ import annotations

import orjson
from flask import Response

FHIR_JSON = "application/fhir+json"


def outcome_resource(code: str, text: str, severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def outcome(status: int, code: str, text: str, severity: str = "error") -> Response:
    body = outcome_resource(code, text, severity)
    return Response(orjson.dumps(body), status=status, mimetype=FHIR_JSON)
