"""A review Task's pages: the Task with its history, the review as signed off, and the coder's
actions on it (start, complete, reject, reassign, reopen)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import abort, current_app, g, redirect, render_template, request, url_for

from plugin.tasks.build import (
    INPUT_SYSTEM,
    history_entry,
    task_history,
    task_input,
    task_rules,
    task_snapshot,
)
from plugin.tasks.store import TaskNotFound, VersionConflict
from plugin.web import wording
from plugin.web.page_access import require_coder, require_session
from plugin.web.queue_pages import owner_name, queue_row
from plugin.web.roles import CODER
from plugin.web.security import check_csrf
from plugin.web.writeback import CLOSED, reopened_input

log = logging.getLogger(__name__)

# action -> (label in the history, new status, business status); "reopen" opens a closed Task
ACTIONS = {
    "start": ("Started", "in-progress", "in-review"),
    "complete-corrected": ("Completed: corrected", "completed", "corrected"),
    "complete-no-change": ("Completed: no change", "completed", "no-change"),
    "reject": ("Rejected", "rejected", "rejected"),
    "reassign": ("Reassigned", None, None),
    "reopen": ("Reopened", "requested", "reopened"),
}


def _me(launch) -> dict:
    """The Task owner that is the signed-in coder."""
    owner = {"reference": launch.fhir_user} if launch.fhir_user else {}
    owner["display"] = launch.user_name or launch.fhir_user or "coder"
    return owner


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


def _task_page(stored, launch, *, message=None, error=None, form=None, status=200, conflict=False):
    task = stored.task
    snapshot = task_snapshot(task) or {}
    return render_template(
        "task.html",
        row=queue_row(stored),
        task=task,
        snapshot=snapshot,
        findings=_findings_of(stored),
        history=task_history(task),
        closed=task.get("status") in CLOSED,
        can_act=launch.role == CODER,
        sid=g.url_sid,
        csrf=launch.csrf,
        message=message,
        error=error,
        form=form or {},
        conflict=conflict,
        me=launch.fhir_user,
        units=wording.units,
        input_system=INPUT_SYSTEM,
    ), status


def task_page(task_id: str):
    launch = require_session()
    stored = _readable_task(task_id, launch)
    return _task_page(stored, launch, message=request.args.get("message"))


def task_review(task_id: str):
    """The review as it stood when the therapist signed off (read from the Task)."""
    launch = require_session()
    stored = _readable_task(task_id, launch)
    snapshot = task_snapshot(stored.task)
    if snapshot is None:
        abort(404, description="This Task was written before reviews were kept with it.")
    return render_template(
        "snapshot.html", row=queue_row(stored), report=snapshot, title=wording.title, sid=g.url_sid
    )


def _conflict(store, task_id: str, launch, kept: dict):
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
    )


def task_action(task_id: str):
    launch = require_coder()
    check_csrf(launch.csrf)
    store = current_app.extensions["unitguard"].store
    form = request.form
    stored = _readable_task(task_id, launch)
    kept = {k: form.get(k, "") for k in ("reason", "owner", "action")}

    def refuse(error: str, code: int = 400):
        return _task_page(stored, launch, error=error, form=kept, status=code)

    try:
        version = int(form.get("version", ""))
    except ValueError:
        return refuse("The form lost the Task's version: reload the page and try again.")
    if version != stored.version:
        return _conflict(store, task_id, launch, kept)
    task = dict(stored.task)
    action = form.get("action", "")
    note_text = form.get("reason", "").strip()[:2000]
    if action not in ACTIONS:
        return refuse("Choose one of the buttons below.")
    closed = task.get("status") in CLOSED
    if closed and action != "reopen":
        return refuse("This review is closed. To change it, give a reason and press Reopen.", 409)
    if not closed and action == "reopen":
        return refuse("This review is still open; there is nothing to reopen.", 409)
    if action in ("reject", "reopen") and not note_text:
        word = "reject" if action == "reject" else "reopen"
        return refuse(f"Write the reason to {word} in the note box, then press the button again.")
    label, new_status, business = ACTIONS[action]
    if action == "reassign":
        owner = form.get("owner", "").strip()[:200]
        if not owner:
            return refuse(
                'Say who should take the review (or choose "me"), then press Reassign again.'
            )
        task["owner"] = _me(launch) if owner == "me" else {"display": owner}
        label = f"Reassigned to {owner_name(task)}"
    else:
        task["status"] = new_status
        task["businessStatus"] = {"text": business}
        if action == "start":
            task["owner"] = _me(launch)
        if action == "reopen":
            task["input"] = [*task.get("input", []), reopened_input(note_text)]
    task["note"] = [
        *task.get("note", []),
        history_entry(action, label, launch.fhir_user, note_text, who_name=launch.user_name),
    ]
    task["lastModified"] = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        store.update(task_id, task, if_match=version)
    except VersionConflict:
        return _conflict(store, task_id, launch, kept)
    return redirect(
        url_for("views.task_page", task_id=task_id, sid=g.url_sid, message=f"Saved: {label}")
    )
