"""The coders' work queue: the filtered, sorted, paged listing, and "next" (the next open Task
of the same filtered, sorted queue). The query string that names a queue travels with the
coder (Task page links, forms), so after an action the coder goes straight on."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from flask import current_app, g, redirect, render_template, request, url_for

from plugin.tasks.build import task_findings, task_input, task_rules
from plugin.tasks.history import final_units
from plugin.tasks.queries import UNASSIGNED
from plugin.tasks.roster import is_person
from plugin.web import notices, wording
from plugin.web.page_access import coder_task, require_coder
from plugin.web.writeback import CLOSED

OPEN = ("requested", "accepted", "in-progress")
PAGE_SIZE = 50
SORTS = {
    "dollars": "-dollars-at-risk",
    "age": "authored-on",
    "date": "-date-of-service",
    "date-asc": "date-of-service",
}
SORT_WORDS = {
    "dollars": "most dollars at risk first",
    "age": "oldest first",
    "date": "newest visit first",
    "date-asc": "oldest visit first",
}
ROW_ID = "0-row-id-0"  # stands for a row's Task id in the one link the rows' links are made from
# The query-string keys that name a queue (its filters and sort), carried from page to page.
QUEUE_KEYS = ("q", "therapist", "payer", "rule", "from", "to", "state", "owner", "mine")
QUEUE_KEYS += ("reopened", "sort")


def queue_args(args) -> dict[str, str]:
    """The queue's filters and sort from a query string (or a form's ``queue`` field, which
    holds one): known keys only, values cut to a sane length."""
    if isinstance(args, str):
        args = dict(parse_qsl(args[:2000]))
    return {k: str(args.get(k))[:200] for k in QUEUE_KEYS if args.get(k)}


def queue_string(args: dict[str, str]) -> str:
    """The queue's query string, for a form's hidden ``queue`` field."""
    return urlencode(args)


def sort_of(args) -> str:
    return args.get("sort") if args.get("sort") in SORTS else "dollars"


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
    findings = [dict(f, title=wording.title(f["rule"])) for f in task_findings(task)]
    return {
        "id": task["id"],
        "version": stored.version,
        "status": task.get("status"),
        "priority": task.get("priority"),
        "description": task.get("description", ""),
        "rules": task_rules(task),
        "findings": findings,
        "errors": sum(1 for f in findings if f["severity"] == "error"),
        "warnings": sum(1 for f in findings if f["severity"] == "warning"),
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
        "assigned": is_person((task.get("owner") or {}).get("reference")),
        "reopened": task_input(task, "reopened"),
        "final_units": final_units(task),
    }


def queue_filters(launch, args) -> dict:
    """The store filters of the queue's query string, always within the coder's EHR. Owner:
    ``me``, ``none`` (no coder holds it) or a coder's reference; ``mine=1`` is ``owner=me``."""
    state = args.get("state", "open")
    status = {"open": list(OPEN), "closed": list(CLOSED), "all": None}.get(state, list(OPEN))
    owner = args.get("owner") or ""
    if args.get("mine") == "1" or owner == "me":
        owner = launch.fhir_user or "-"
    elif owner == "none":
        owner = UNASSIGNED
    return {
        "issuer": launch.iss,
        "status": status,
        "rule": args.get("rule") or None,
        "therapist_name": args.get("therapist") or None,
        "payer": args.get("payer") or None,
        "owner": owner or None,
        "date_from": args.get("from") or None,
        "date_to": args.get("to") or None,
        "text": (args.get("q") or "")[:100] or None,
        "reopened": True if args.get("reopened") == "1" else None,
    }


def coders_of(launch) -> list:
    """The EHR's coders (by name), whom a Task may be assigned to."""
    roster = current_app.extensions["unitguard"].roster
    return roster.coders(launch.iss) if roster is not None else []


def render_queue(launch, args, *, bulk: dict | None = None, error: str | None = None, code=200):
    """The queue page for these filters; ``bulk`` keeps a refused bulk form's choices."""
    store = current_app.extensions["unitguard"].store
    filters = queue_filters(launch, args)
    sort_key = sort_of(args)
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    rows, matching = store.search(
        **filters, sort=SORTS[sort_key], count=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    scope = {"issuer": launch.iss, "status": filters["status"]}
    query = queue_args(args)
    # one link built, each row's made from it (url_for per row is a tenth of the page's time)
    task_href = url_for("views.task_page", task_id=ROW_ID, sid=g.url_sid, **query)
    return render_template(
        "queue.html",
        rows=[queue_row(s) for s in rows],
        task_href=task_href,
        row_id=ROW_ID,
        matching=matching,
        total=store.count(**scope),
        state=args.get("state", "open"),
        choices=store.choices(**scope),
        coders=coders_of(launch),
        title=wording.title,
        args=args,
        sort=sort_key,
        sort_words=SORT_WORDS[sort_key],
        page=page,
        pages=max(1, math.ceil(matching / PAGE_SIZE)),
        query=query,
        queue_qs=queue_string(query),
        sid=g.url_sid,
        csrf=launch.csrf,
        me=launch.fhir_user,
        bulk=bulk or {},
        error=error,
    ), code


def queue():
    return render_queue(require_coder(), request.args)


def queue_next():
    """Redirect to the next open Task of the filtered, sorted queue after Task ``after`` (the
    first one without it); at the end of the queue, a page that says so."""
    launch = require_coder()
    store = current_app.extensions["unitguard"].store
    query = queue_args(request.args)
    filters = dict(queue_filters(launch, query), status=list(OPEN))
    after = (request.args.get("after") or "")[:64] or None
    previous = (request.args.get("previous") or "")[:64] or None
    found = store.next_after(SORTS[sort_of(query)], after, **filters)
    if found is None:
        left = store.count(**filters)
        return render_template(
            "queue_end.html",
            query=query,
            left=left,
            sid=g.url_sid,
            message=notices.saved_notice(request.args.get("message"), coder_task(previous)),
            previous=previous,
        )
    target = url_for(
        "views.task_page",
        task_id=found.task["id"],
        sid=g.url_sid,
        message=notices.task_code(request.args.get("message")),
        previous=previous,
        **query,
    )
    return redirect(target)
