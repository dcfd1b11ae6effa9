"""FHIR writes in the sandbox: create (conditional with If-None-Exist), update (If-Match) and
batch or transaction Bundles, each body validated as FHIR R4."""

from __future__ import annotations

import orjson
from fhir.resources.R4B import get_fhir_model_class
from flask import Flask, Response, request
from pydantic import ValidationError

from sandbox.access import guard, writable
from sandbox.outcome import FHIR_JSON, outcome
from sandbox.search import matches
from sandbox.state import Sandbox
from sandbox.store import Conflict


def validate(resource: dict) -> str | None:
    try:
        get_fhir_model_class(resource.get("resourceType", "")).model_validate(resource)
    except (KeyError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return f"unknown resourceType {resource.get('resourceType')!r}"
    return None


def install_writes(app: Flask, sandbox: Sandbox, fhir: str) -> None:
    """Add create, update and the batch/transaction endpoint to the sandbox app."""

    def _body(rtype: str) -> tuple[dict | None, Response | None]:
        try:
            resource = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return None, outcome(400, "invalid", "the body is not JSON")
        if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
            return None, outcome(400, "invalid", f"the body is not a {rtype}")
        problem = validate(resource)
        if problem:
            return None, outcome(422, "processing", f"not valid FHIR R4: {problem}")
        return resource, None

    @app.post("/fhir/<rtype>")
    def create(rtype: str):
        if rtype not in sandbox.profile.create:
            return outcome(405, "not-supported", f"creating {rtype} is not allowed here")
        refused, patient = guard(sandbox, rtype, "c")
        if refused:
            return refused
        resource, error = _body(rtype)
        if error:
            return error
        if not writable(resource, patient):
            return outcome(403, "forbidden", "the token may write only its patient's resources")
        condition = request.headers.get("If-None-Exist")
        if condition:
            if not sandbox.profile.conditional_create:
                return outcome(412, "not-supported", "conditional create is not supported")
            key, _, value = condition.partition("=")
            existing = [r for r in sandbox.store.all(rtype) if matches(r, key, value)]
            if len(existing) > 1:
                return outcome(412, "duplicate", "the condition matches several resources")
            if existing:
                return Response(orjson.dumps(existing[0]), status=200, mimetype=FHIR_JSON)
        resource.pop("id", None)
        body, version, _ = sandbox.store.put(resource)
        response = Response(orjson.dumps(body), status=201, mimetype=FHIR_JSON)
        response.headers["Location"] = f"{fhir}/{rtype}/{body['id']}/_history/{version}"
        response.headers["ETag"] = f'W/"{version}"'
        return response

    @app.put("/fhir/<rtype>/<rid>")
    def update(rtype: str, rid: str):
        if rtype not in sandbox.profile.update:
            return outcome(405, "not-supported", f"updating {rtype} is not allowed here")
        refused, patient = guard(sandbox, rtype, "u")
        if refused:
            return refused
        resource, error = _body(rtype)
        if error:
            return error
        current = sandbox.store.get(rtype, rid)
        if current is not None and not writable(current[0], patient):
            return outcome(404, "not-found", f"{rtype}/{rid} is not known")  # as a read says
        if not writable(resource, patient):
            return outcome(403, "forbidden", "the token may write only its patient's resources")
        match = request.headers.get("If-Match")
        version = None
        if match:
            try:
                version = int(match.removeprefix("W/").strip('"'))
            except ValueError:
                return outcome(400, "invalid", 'If-Match must look like W/"3"')
        try:
            body, new_version, _ = sandbox.store.put(dict(resource, id=rid), if_match=version)
        except Conflict as exc:
            return outcome(412, "conflict", str(exc))
        response = Response(orjson.dumps(body), mimetype=FHIR_JSON)
        response.headers["ETag"] = f'W/"{new_version}"'
        return response

    @app.post("/fhir")
    def batch():
        try:
            bundle = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return outcome(400, "invalid", "the body is not JSON")
        kind = bundle.get("type") if isinstance(bundle, dict) else None
        if kind not in ("batch", "transaction"):
            return outcome(400, "invalid", "expected a Bundle of type batch or transaction")
        answers = []
        with app.test_client() as inner:
            headers = {"Authorization": request.headers.get("Authorization", "")}
            for entry in bundle.get("entry") or []:
                req = (entry or {}).get("request") or {}
                method, url = req.get("method", "GET"), req.get("url", "")
                extra = dict(headers)
                for name, header in (("ifNoneExist", "If-None-Exist"), ("ifMatch", "If-Match")):
                    if req.get(name):
                        extra[header] = req[name]
                response = inner.open(
                    f"/fhir/{url.lstrip('/')}",
                    method=method,
                    headers=extra,
                    data=orjson.dumps(entry.get("resource")) if entry.get("resource") else None,
                    content_type=FHIR_JSON,
                )
                if kind == "transaction" and response.status_code >= 400:
                    return outcome(
                        response.status_code,
                        "processing",
                        f"transaction failed at {method} {url.split('?')[0]}: "
                        "nothing was applied after it",
                    )
                body = response.get_json(silent=True)
                answers.append(
                    {
                        "response": {"status": str(response.status_code)},
                        **({"resource": body} if body else {}),
                    }
                )
        return Response(
            orjson.dumps({"resourceType": "Bundle", "type": f"{kind}-response", "entry": answers}),
            mimetype=FHIR_JSON,
        )
