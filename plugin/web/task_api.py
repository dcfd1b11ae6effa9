"""The Task store as a FHIR R4 endpoint (/fhir/Task): search, read, and If-Match updates."""

from __future__ import annotations

import hmac

import orjson
from flask import Blueprint, Response, current_app, request

from plugin.tasks.store import TaskNotFound, TaskStore, TaskStoreError, VersionConflict

FHIR_JSON = "application/fhir+json"


def outcome(status: int, code: str, text: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return Response(orjson.dumps(body), status=status, mimetype=FHIR_JSON)


def _authorised() -> bool:
    tokens = current_app.config.get("TASK_API_TOKENS") or ()
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        sent = header[7:].strip()
        return any(hmac.compare_digest(sent, t) for t in tokens)
    return False


def create_task_api(store: TaskStore) -> Blueprint:
    bp = Blueprint("task_api", __name__, url_prefix="/fhir")

    @bp.before_request
    def require_token():
        if not _authorised():
            response = outcome(401, "login", "a bearer token for the Task API is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="unitguard-tasks"'
            return response
        return None

    @bp.get("/Task")
    def search():
        args = request.args
        try:
            count = min(max(int(args.get("_count", 50)), 1), 200)
            offset = max(int(args.get("_offset", 0)), 0)
        except ValueError:
            return outcome(400, "invalid", "_count and _offset must be integers")
        status = [s for s in args.get("status", "").split(",") if s] or None
        page, total = store.search(
            status=status,
            code=args.get("code"),
            owner=args.get("owner"),
            patient=args.get("patient") or args.get("subject"),
            encounter=args.get("encounter"),
            identifier=args.get("identifier"),
            rule=args.get("rule"),
            sort=args.get("_sort", "-_lastUpdated"),
            count=count,
            offset=offset,
        )
        base = request.base_url
        links = [{"relation": "self", "url": request.url}]
        if offset + count < total:
            query = request.args.to_dict()
            query["_offset"] = str(offset + count)
            from urllib.parse import urlencode

            links.append({"relation": "next", "url": f"{base}?{urlencode(query)}"})
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/{s.task['id']}",
                    "resource": s.task,
                    "search": {"mode": "match"},
                }
                for s in page
            ],
        }
        return Response(orjson.dumps(bundle), mimetype=FHIR_JSON)

    @bp.get("/Task/<task_id>")
    def read(task_id: str):
        try:
            stored = store.read(task_id)
        except TaskNotFound:
            return outcome(404, "not-found", f"Task/{task_id} is not known")
        response = Response(orjson.dumps(stored.task), mimetype=FHIR_JSON)
        response.headers["ETag"] = stored.etag
        return response

    @bp.put("/Task/<task_id>")
    def update(task_id: str):
        try:
            task = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return outcome(400, "invalid", "the body is not JSON")
        if not isinstance(task, dict) or task.get("resourceType") != "Task":
            return outcome(400, "invalid", "the body is not a Task")
        match = request.headers.get("If-Match", "")
        version = None
        if match:
            try:
                version = int(match.removeprefix("W/").strip('"'))
            except ValueError:
                return outcome(400, "invalid", 'If-Match must be an ETag such as W/"3"')
        try:
            stored = store.update(task_id, task, if_match=version)
        except TaskNotFound:
            return outcome(404, "not-found", f"Task/{task_id} is not known")
        except VersionConflict as exc:
            return outcome(412, "conflict", str(exc))
        except TaskStoreError as exc:
            return outcome(400, "invalid", str(exc))
        response = Response(orjson.dumps(stored.task), mimetype=FHIR_JSON)
        response.headers["ETag"] = stored.etag
        return response

    return bp
