"""Bulk actions from the queue: assign the chosen Tasks to a coder, or complete them with a
reason. Each Task is changed under If-Match semantics (the version its row showed), so one that
changed meanwhile is left alone; the answer says, row by row, which were done and which not."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, render_template, request

from plugin.tasks.build import task_input
from plugin.tasks.roster import Coder
from plugin.web.page_access import require_coder
from plugin.web.queue_pages import coders_of, queue_args, queue_row, queue_string, render_queue
from plugin.web.security import check_csrf
from plugin.web.task_actions import Asked, Coding, Refused, apply, owner_for

MAX_BULK = 200  # Tasks one bulk action may change (four queue pages)
BULK = {"assign": "reassign", "complete": "complete-no-change"}


@dataclass(frozen=True)
class Outcome:
    task_id: str
    done: bool
    what: str  # "done", "changed" (meanwhile: not done), "refused", "missing"
    text: str
    row: dict | None = None


def coding_for(launch) -> Coding:
    """The signed-in coder and the EHR's coders, for an action's checks."""
    ext = current_app.extensions["unitguard"]
    settings = ext.settings
    team = {"reference": settings.coding_owner, "display": settings.coding_owner_display}

    def find(reference: str) -> Coder | None:
        return ext.roster.find(launch.iss, reference) if ext.roster is not None else None

    me = Coder(launch.fhir_user or "", launch.user_name or launch.fhir_user or "coder")
    return Coding(me=me, find=find, team=team)


CHANGED = "Not done: it changed since your page was loaded."


def _check(task_id, stored, sent_version: str, asked: Asked, launch, coding: Coding):
    """The changed Task to write, or the Outcome that says why not."""
    if stored is None:
        return Outcome(task_id, False, "missing", "Not found: no such review Task.")
    if task_input(stored.task, "ehr") != launch.iss:
        return Outcome(task_id, False, "refused", "Not done: this review is not in your queue.")
    if sent_version != str(stored.version):
        return Outcome(task_id, False, "changed", CHANGED, queue_row(stored))
    try:
        task, label = apply(stored.task, asked, coding)
    except Refused as refused:
        return Outcome(task_id, False, "refused", f"Not done: {refused.message}", queue_row(stored))
    return task, label


def _apply_each(chosen: list[str], form, asked: Asked, launch) -> list[Outcome]:
    """Check and change each chosen Task; write them in one transaction, each under If-Match
    (a Task changed between the read and the write is left alone and said so)."""
    store = current_app.extensions["unitguard"].store
    coding = coding_for(launch)
    found = store.read_each(chosen)
    outcomes: dict[str, Outcome] = {}
    writes, labels = [], {}
    for task_id in chosen:
        stored = found.get(task_id)
        checked = _check(task_id, stored, form.get(f"version-{task_id}", ""), asked, launch, coding)
        if isinstance(checked, Outcome):
            outcomes[task_id] = checked
        else:
            writes.append((task_id, checked[0], stored.version))
            labels[task_id] = checked[1]
    for task_id, saved in store.update_each(writes).items():
        if saved is None:
            row = queue_row(found[task_id])
            outcomes[task_id] = Outcome(task_id, False, "changed", CHANGED, row)
        else:
            text = f"Done: {labels[task_id]}."
            outcomes[task_id] = Outcome(task_id, True, "done", text, queue_row(saved))
    return [outcomes[t] for t in chosen]


def queue_bulk():
    launch = require_coder()
    check_csrf(launch.csrf)
    form = request.form
    query = queue_args(form.get("queue", ""))
    chosen = list(dict.fromkeys(t.removeprefix("Task/")[:64] for t in form.getlist("task")))
    action = form.get("bulk", "")
    reason = form.get("reason", "").strip()[:2000]
    owner = form.get("owner", "").strip()[:200]
    kept = {"chosen": set(chosen), "reason": reason, "owner": owner, "action": action}

    def refuse(error: str):
        return render_queue(launch, query, bulk=kept, error=error, code=400)

    if not chosen:
        return refuse("Tick the reviews to change first (the box at the start of each row).")
    if len(chosen) > MAX_BULK:
        return refuse(f"Choose at most {MAX_BULK} reviews at once.")
    if action not in BULK:
        return refuse('Press "Assign" or "Complete: no change" under the list.')
    coding = coding_for(launch)
    if action == "assign":
        try:
            owner_for(owner, coding)
        except Refused as refused:
            return refuse(refused.message)
    elif not reason:
        return refuse("Write the reason for completing them, then press the button again.")
    asked = Asked(BULK[action], note=reason if action == "complete" else "", owner=owner)
    outcomes = _apply_each(chosen, form, asked, launch)
    return render_template(
        "bulk.html",
        outcomes=outcomes,
        done=sum(1 for o in outcomes if o.done),
        action=action,
        query=query,
        queue_qs=queue_string(query),
        coders=coders_of(launch),
        sid=g.url_sid,
    )
