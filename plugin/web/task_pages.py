"""A review Task's pages: the Task with its findings, money and history, the review as signed
off, and the coder's actions on it (start, complete, reject, reassign, reopen). The queue's
filters ride along in the links and the form, so a closing action goes straight on to the next
open Task of the same queue."""

from __future__ import annotations

import logging

from flask import abort, current_app, g, redirect, render_template, request, url_for

from plugin.fhir.index import configured_timezone
from plugin.tasks.build import task_input, task_rules, task_snapshot
from plugin.tasks.history import task_history
from plugin.tasks.store import TaskNotFound, VersionConflict
from plugin.web import money, notices, wording
from plugin.web.page_access import coder_task, require_coder, require_session
from plugin.web.queue_bulk import coding_for
from plugin.web.queue_pages import coders_of, queue_args, queue_row, queue_string
from plugin.web.roles import CODER
from plugin.web.security import check_csrf
from plugin.web.task_actions import CLOSING, Asked, Refused, apply, read_units
from plugin.web.writeback import CLOSED

log = logging.getLogger(__name__)


def _readable_task(task_id: str, launch):
    """The Task if this session may see it: a coder of its EHR, or the clinician launched for
    its patient (read-only); anything else is refused without saying whether it exists."""
    try:
        stored = current_app.extensions["unitguard"].store.read(task_id)
    except TaskNotFound:
        abort(404, description="That review Task does not exist.")
    task = stored.task
    same_ehr = task_input(task, "ehr") == launch.iss
    if launch.role == CODER:
        allowed = same_ehr
    else:
        allowed = (
            same_ehr
            and bool(launch.patient)
            and ((task.get("for") or {}).get("reference") == launch.patient)
        )
    if not allowed:
        log.info("task access refused: role=%s", launch.role)
        abort(403, description="This review is not in your work queue.")
    return stored


def _findings_of(stored) -> list[dict]:
    snapshot = task_snapshot(stored.task) or {}
    if snapshot.get("findings"):
        return [dict(f, title=wording.title(f.get("rule", ""))) for f in snapshot["findings"]]
    return [
        {"rule": r, "title": wording.title(r), "message": "", "evidence": []}
        for r in task_rules(stored.task)
    ]


def _codes(snapshot: dict) -> list[str]:
    return [s["code"] for s in snapshot.get("services") or [] if s.get("code")]


def _task_page(
    stored, launch, *, message=None, error=None, form=None, status=200, conflict=False, query=None
):
    task = stored.task
    snapshot = task_snapshot(task) or {}
    query = queue_args(request.args) if query is None else query
    row = queue_row(stored)
    findings = _findings_of(stored)
    return render_template(
        "task.html",
        row=row,
        task=task,
        snapshot=snapshot,
        findings=findings,
        money=money.explain(snapshot, findings),
        history=task_history(task, configured_timezone()[0]),
        closed=task.get("status") in CLOSED,
        can_act=launch.role == CODER,
        coders=coders_of(launch) if launch.role == CODER else [],
        mine=bool(launch.fhir_user) and row["owner_ref"] == launch.fhir_user,
        sid=g.url_sid,
        csrf=launch.csrf,
        message=message,
        error=error,
        form=form or {},
        conflict=conflict,
        me=launch.fhir_user,
        units=wording.units,
        query=query,
        queue_qs=queue_string(query),
        previous=request.args.get("previous"),
        confirm_take=bool((form or {}).get("confirm_take")),
    ), status


def task_page(task_id: str):
    launch = require_session()
    stored = _readable_task(task_id, launch)
    previous = request.args.get("previous")
    saved_on = stored.task if previous in (None, "", task_id) else coder_task(previous)
    message = notices.saved_notice(request.args.get("message"), saved_on)
    return _task_page(stored, launch, message=message)


def task_review(task_id: str):
    """The review as it stood when the therapist signed off (read from the Task)."""
    launch = require_session()
    stored = _readable_task(task_id, launch)
    snapshot = task_snapshot(stored.task)
    if snapshot is None:
        abort(404, description="This Task was written before reviews were kept with it.")
    return render_template(
        "snapshot.html",
        row=queue_row(stored),
        report=snapshot,
        title=wording.title,
        money=money.explain(snapshot, snapshot.get("findings") or []),
        sid=g.url_sid,
    )


def _conflict(store, task_id: str, launch, kept: dict, query: dict):
    """412: the Task changed since the form was loaded; show it as it is now, keeping what
    the coder typed."""
    return _task_page(
        store.read(task_id),
        launch,
        error="Your change was not saved, so nothing was overwritten: the review is shown "
        "below as it is now, and your note is kept. Check it and press the button again.",
        form=kept,
        status=412,
        conflict=True,
        query=query,
    )


def _asked(form, snapshot: dict) -> Asked:
    action = form.get("action", "")
    units, unit_errors = (
        read_units(form, _codes(snapshot)) if action == "complete-corrected" else ({}, ())
    )
    return Asked(
        action=action,
        note=form.get("reason", "").strip()[:2000],
        owner=form.get("owner", "").strip()[:200],
        confirm=form.get("confirm") == "yes",
        units=units,
        unit_errors=unit_errors,
    )


def task_action(task_id: str):
    launch = require_coder()
    check_csrf(launch.csrf)
    store = current_app.extensions["unitguard"].store
    form = request.form
    query = queue_args(form.get("queue", ""))
    stored = _readable_task(task_id, launch)
    kept = {k: form.get(k, "") for k in ("reason", "owner", "action")}
    kept.update({k: v for k, v in form.items() if k.startswith("units-")})

    def refuse(error: str, code: int = 400, confirm_take: bool = False):
        return _task_page(
            stored,
            launch,
            error=error,
            form={**kept, "confirm_take": confirm_take},
            status=code,
            query=query,
        )

    try:
        version = int(form.get("version", ""))
    except ValueError:
        return refuse("The form lost the Task's version: reload the page and try again.")
    if version != stored.version:
        return _conflict(store, task_id, launch, kept, query)
    asked = _asked(form, task_snapshot(stored.task) or {})
    try:
        task, label = apply(stored.task, asked, coding_for(launch))
    except Refused as refused:
        return refuse(refused.message, refused.status, refused.confirm)
    try:
        store.update(task_id, task, if_match=version)
    except VersionConflict:
        return _conflict(store, task_id, launch, kept, query)
    if asked.action in CLOSING:  # straight on to the next open Task of the same queue
        return redirect(
            url_for(
                "views.queue_next",
                sid=g.url_sid,
                after=task_id,
                message=asked.action,
                previous=task_id,
                **query,
            )
        )
    return redirect(
        url_for("views.task_page", task_id=task_id, sid=g.url_sid, message=asked.action, **query)
    )
