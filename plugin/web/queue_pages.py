"""The coders' work queue: the filtered, sorted, paged listing and its CSV export."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime

from flask import Response, current_app, g, render_template, request

from plugin.tasks.build import task_input, task_rules
from plugin.web.page_access import require_coder
from plugin.web.writeback import CLOSED

OPEN = ("requested", "accepted", "in-progress")
PAGE_SIZE = 50
SORTS = {
    "dollars": "-dollars-at-risk",
    "age": "authored-on",
    "date": "-date-of-service",
    "date-asc": "date-of-service",
}


def _age_days(task: dict, now: datetime | None = None) -> int:
    try:
        authored = datetime.fromisoformat(task.get("authoredOn", ""))
    except ValueError:
        return 0
    if authored.tzinfo is None:
        authored = authored.replace(tzinfo=UTC)
    return max(0, ((now or datetime.now(UTC)) - authored).days)


def owner_name(task: dict) -> str:
    """Who holds the Task, as the queue and the Task page show it."""
    owner = task.get("owner") or {}
    return owner.get("display") or owner.get("reference") or ""


def queue_row(stored) -> dict:
    """A stored Task as the queue, the CSV export and the Task page read it."""
    task = stored.task
    return {
        "id": task["id"],
        "version": stored.version,
        "status": task.get("status"),
        "priority": task.get("priority"),
        "description": task.get("description", ""),
        "rules": task_rules(task),
        "dollars": float((task_input(task, "dollars-at-risk") or {}).get("value", 0.0)),
        "patient_name": task_input(task, "patient-name"),
        "mrn": task_input(task, "patient-mrn"),
        "therapist": task_input(task, "therapist-name") or task_input(task, "therapist"),
        "payer": task_input(task, "payer"),
        "date": task_input(task, "date-of-service"),
        "age": _age_days(task),
        "encounter": (task.get("encounter") or {}).get("reference", ""),
        "owner": owner_name(task),
        "owner_ref": (task.get("owner") or {}).get("reference"),
        "reopened": task_input(task, "reopened"),
    }


def _queue_filters(launch, args) -> dict:
    """The store filters of the queue's query string, always within the coder's EHR."""
    state = args.get("state", "open")
    status = {"open": list(OPEN), "closed": list(CLOSED), "all": None}.get(state, list(OPEN))
    filters = {
        "issuer": launch.iss,
        "status": status,
        "rule": args.get("rule") or None,
        "therapist_name": args.get("therapist") or None,
        "payer": args.get("payer") or None,
        "owner": args.get("owner") or None,
        "date_from": args.get("from") or None,
        "date_to": args.get("to") or None,
        "text": (args.get("q") or "")[:100] or None,
        "reopened": True if args.get("reopened") == "1" else None,
    }
    if args.get("mine") == "1":
        filters["owner"] = launch.fhir_user or "-"
    return filters


def queue():
    launch = require_coder()
    store = current_app.extensions["unitguard"].store
    args = request.args
    filters = _queue_filters(launch, args)
    sort_key = args.get("sort", "dollars") if args.get("sort") in SORTS else "dollars"
    try:
        page = max(1, int(args.get("page", "1")))
    except ValueError:
        page = 1
    rows, matching = store.search(
        **filters, sort=SORTS[sort_key], count=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    scope = {"issuer": launch.iss, "status": filters["status"]}
    total = store.count(**scope)
    pages = max(1, math.ceil(matching / PAGE_SIZE))
    query = {k: v for k, v in args.items() if k not in ("page", "sid") and v}
    return render_template(
        "queue.html",
        rows=[queue_row(s) for s in rows],
        matching=matching,
        total=total,
        state=args.get("state", "open"),
        choices=store.choices(**scope),
        args=args,
        sort=sort_key,
        page=page,
        pages=pages,
        query=query,
        sid=g.url_sid,
        me=launch.fhir_user,
    )


CSV_COLUMNS = (
    "task",
    "patient",
    "mrn",
    "date_of_service",
    "therapist",
    "payer",
    "owner",
    "dollars_at_risk",
    "age_days",
    "status",
    "reopened",
    "rules",
    "encounter",
)


def neutralise(cell: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula: text starting with = + - @ (or a
    tab or carriage return) gets a leading apostrophe (OWASP "CSV injection")."""
    text = "" if cell is None else str(cell)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def queue_csv():
    launch = require_coder()
    store = current_app.extensions["unitguard"].store
    filters = _queue_filters(launch, request.args)
    sort_key = request.args.get("sort", "dollars")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    offset = 0
    while True:
        rows, matching = store.search(
            **filters, sort=SORTS.get(sort_key, SORTS["dollars"]), count=1000, offset=offset
        )
        for stored in rows:
            r = queue_row(stored)
            writer.writerow(
                [
                    neutralise(v)
                    for v in (
                        f"Task/{r['id']}",
                        r["patient_name"],
                        r["mrn"],
                        r["date"],
                        r["therapist"],
                        r["payer"],
                        r["owner"],
                        f"{r['dollars']:.2f}",
                        r["age"],
                        r["status"],
                        "yes" if r["reopened"] else "",
                        " ".join(r["rules"]),
                        r["encounter"],
                    )
                ]
            )
        offset += len(rows)
        if not rows or offset >= matching:
            break
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="unitguard-queue.csv"'
    return response
