"""The Task store as a FHIR R4 endpoint (/fhir/Task): search, read, and If-Match updates.

Each bearer token is bound to one EHR and to the fields it may change (plugin.web.api_tokens):
it sees only its EHR's Tasks (another EHR's Task is 404, as an unknown one), a PUT that changes
anything else is refused with the Task unchanged, and every change adds a line to the Task's
history naming the token's tool.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from flask import Blueprint, Response, current_app, g, request

from plugin.tasks.build import task_input
from plugin.tasks.history import history_entry
from plugin.tasks.store import TaskNotFound, TaskStore, TaskStoreError, VersionConflict
from plugin.web.api_tokens import ApiToken, changes, find_token

FHIR_JSON = "application/fhir+json"
# The R4 required value sets the R4B model does not check (it types these as plain codes).
# Source: FHIR R4 Task resource, https://hl7.org/fhir/R4/task.html (task-status, task-intent,
# request-priority).
TASK_CODES = {
    "status": frozenset(
        "draft requested received accepted rejected ready cancelled in-progress on-hold failed "
        "completed entered-in-error".split()
    ),
    "intent": frozenset(
        "unknown proposal plan order original-order reflex-order filler-order instance-order "
        "option".split()
    ),
    "priority": frozenset("routine urgent asap stat".split()),
}


def task_problem(task: dict) -> str | None:
    """Why ``task`` is not a valid R4 Task (one line, no values echoed), or None."""
    from fhir.resources.R4B.task import Task
    from pydantic import ValidationError

    try:
        Task.model_validate(task)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "Task"
        return f"not a valid FHIR R4 Task: {where}: {first.get('msg', 'invalid')}"
    except (TypeError, ValueError, RecursionError):
        return "not a valid FHIR R4 Task"
    for element, codes in TASK_CODES.items():
        value = task.get(element)
        if (value is not None or element != "priority") and value not in codes:
            return f"Task.{element} must be one of the R4 codes: {', '.join(sorted(codes))}"
    return None


def outcome(status: int, code: str, text: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return Response(orjson.dumps(body), status=status, mimetype=FHIR_JSON)


def _token() -> ApiToken | None:
    tokens = current_app.config.get("TASK_API_TOKENS") or ()
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return find_token(tokens, header[7:].strip())
    return None


def _issuer(task: dict) -> str:
    found = task_input(task, "ehr")
    return found if isinstance(found, str) else ""


def _api_change(token: ApiToken, changed: list[str]) -> dict:
    """The history line of a change made through the Task API."""
    return history_entry(
        "api-change",
        f"Changed through the Task API: {', '.join(changed)}",
        None,
        who_name=f"Task API ({token.name})",
    )


def create_task_api(store: TaskStore, public_url: str = "http://127.0.0.1:8080") -> Blueprint:
    """``public_url`` (``UNITGUARD_PUBLIC_URL``) makes every absolute link; never the Host."""
    bp = Blueprint("task_api", __name__, url_prefix="/fhir")
    base = f"{public_url.rstrip('/')}/fhir/Task"

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return outcome(exc.code or 500, "processing", exc.description or exc.name)
        current_app.logger.error("Task API error: %s", type(exc).__name__)
        return outcome(500, "exception", "the Task could not be processed")

    @bp.before_request
    def require_token():
        g.api_token = _token()
        if g.api_token is None:
            response = outcome(401, "login", "a bearer token for the Task API is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="unitguard-tasks"'
            return response
        return None

    def _own(task_id: str):
        """The stored Task if it is of the token's EHR (TaskNotFound otherwise, as unknown)."""
        stored = store.read(task_id)
        if _issuer(stored.task) != g.api_token.issuer:
            raise TaskNotFound(f"no Task {task_id}")
        return stored

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
            issuer=g.api_token.issuer,
            sort=args.get("_sort", "-_lastUpdated"),
            count=count,
            offset=offset,
        )
        from urllib.parse import urlencode

        query = request.args.to_dict()
        links = [{"relation": "self", "url": f"{base}?{urlencode(query)}" if query else base}]
        if offset + count < total:
            query["_offset"] = str(offset + count)
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
            stored = _own(task_id)
        except TaskNotFound:
            return outcome(404, "not-found", f"Task/{task_id} is not known")
        response = Response(orjson.dumps(stored.task), mimetype=FHIR_JSON)
        response.headers["ETag"] = stored.etag
        return response

    @bp.put("/Task/<task_id>")
    def update(task_id: str):
        match = request.headers.get("If-Match", "")
        if not match:
            return outcome(428, "required", 'PUT needs If-Match with the version read (e.g. W/"3")')
        try:
            version = int(match.removeprefix("W/").strip('"'))
        except ValueError:
            return outcome(400, "invalid", 'If-Match must be an ETag such as W/"3"')
        try:
            task = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            return outcome(400, "invalid", "the body is not JSON")
        if not isinstance(task, dict) or task.get("resourceType") != "Task":
            return outcome(400, "invalid", "the body is not a Task")
        if task.get("id") not in (None, task_id):
            return outcome(400, "invalid", "the Task's id is not the one in the URL")
        problem = task_problem(task)
        if problem:
            return outcome(400, "invalid", problem)
        token: ApiToken = g.api_token
        try:
            current = _own(task_id)
        except TaskNotFound:
            return outcome(404, "not-found", f"Task/{task_id} is not known")
        if task.get("identifier") != current.task.get("identifier"):
            # the identifier ties the Task to its visit; If-Match below makes this check exact
            return outcome(422, "business-rule", "a Task's identifier cannot be changed")
        if current.version != version:  # stale: 412 whatever else the body says
            return outcome(412, "conflict", f"Task {task_id} is at version {current.version}")
        changed, forbidden = changes(current.task, task)
        if forbidden:
            return outcome(403, "forbidden", f"the Task API never changes {', '.join(forbidden)}")
        beyond = [key for key in changed if key not in token.fields]
        if beyond:
            return outcome(
                403,
                "forbidden",
                f"this token may change only {', '.join(sorted(token.fields)) or 'nothing'}, "
                f"not {', '.join(beyond)}",
            )
        if not changed:  # nothing to change: no new version, no history line
            stored = current
        else:
            history = [*(task.get("note") or []), _api_change(token, changed)]
            task = dict(task, id=task_id, meta=current.task.get("meta") or {}, note=history)
            task["lastModified"] = datetime.now(UTC).isoformat(timespec="seconds")
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
