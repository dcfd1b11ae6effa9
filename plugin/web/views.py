"""The pages people use: the therapist's review at sign-off and the coders' queue."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from plugin.domain import Severity
from plugin.errors import InputError
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.tasks.build import (
    INPUT_SYSTEM,
    RULE_SYSTEM,
    task_identifier,
    task_input,
    task_rules,
)
from plugin.tasks.store import TaskNotFound, VersionConflict
from plugin.web.security import check_csrf, resolve_session
from plugin.web.writeback import sign_off

log = logging.getLogger(__name__)
bp = Blueprint("views", __name__)

CHECKLIST = (
    ("Specific deficit named", "doc-no-deficit"),
    ("Skilled intervention and cueing", "doc-no-skilled-intervention"),
    ("Measurable functional goal", "doc-no-functional-goal"),
    ("Objective measure recorded", "doc-no-objective-measure"),
    ("Progress against an earlier measure", "doc-no-progress"),
    ("Patient response", "doc-no-patient-response"),
    ("Note signed", "doc-unsigned"),
    ("Total treatment time", "doc-no-total-time"),
)
ACTIONS = {
    "complete-corrected": ("completed", "corrected"),
    "complete-no-change": ("completed", "no-change"),
    "reject": ("rejected", "rejected"),
}


@bp.before_request
def load_session():
    ext = current_app.extensions["unitguard"]
    found = resolve_session(ext.sessions)
    g.sid, g.launch, g.url_sid, g.refused = found.sid, found.session, found.url_sid, found.refused
    if g.sid and g.launch is None:
        ext.visit_cache.drop(g.sid)  # the session ended or expired: forget what it read


def _require_session():
    if g.refused:
        log.warning("session id refused: %s", g.refused)
        abort(
            403,
            description="This link does not belong to this browser; open unitguard from "
            "the patient's chart.",
        )
    if g.launch is None:
        abort(
            401,
            description="Open unitguard from the patient's chart (your session has "
            "ended or was never started).",
        )
    return g.launch


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


def _review(encounter_id: str, fresh: bool = False):
    """Review the launched visit: from this session's short-lived cache unless ``fresh``, else
    (and then cached) from the EHR. Only a visit that could be reviewed is cached."""
    launch = _require_session()
    if launch.encounter and launch.encounter != f"Encounter/{encounter_id}":
        abort(
            403,
            description="This launch is for another visit; open unitguard from that "
            "visit in the chart.",
        )
    ext = current_app.extensions["unitguard"]
    cached = None if fresh else ext.visit_cache.get(g.sid, encounter_id)
    try:
        if cached is None:
            try:
                bundle = ext.visits.fetch(launch, encounter_id)
            finally:
                ext.sessions.save(g.sid, launch)  # keep tokens the fetch may have refreshed
        else:
            bundle = cached
        report = review_bundle(
            bundle,
            encounter_id=encounter_id,
            policy=load_policy(),
            source=f"Encounter/{encounter_id}",
            code_map=ext.code_maps.get(launch.iss),
        )
    except InputError as exc:
        log.warning("visit could not be reviewed: %s", type(exc).__name__)
        abort(422, description=str(exc))
    if cached is None:
        ext.visit_cache.put(g.sid, encounter_id, bundle)
    return report


@bp.get("/review/<encounter_id>")
def review_page(encounter_id: str):
    report = _review(encounter_id, fresh=request.args.get("refresh") == "1")
    ext = current_app.extensions["unitguard"]
    fired = {f.rule for f in report.findings}
    checklist = [(label, rule not in fired) for label, rule in CHECKLIST]
    existing = ext.store.search(identifier=_identifier(g.launch.iss, report.visit.encounter))[0]
    return render_template(
        "review.html",
        report=report,
        checklist=checklist,
        sid=g.url_sid,
        csrf=g.launch.csrf,
        task=existing[0] if existing else None,
        status=request.args.get("status"),
        Severity=Severity,
    )


def _identifier(issuer: str, encounter: str) -> str:
    from plugin.tasks.build import IDENTIFIER_SYSTEM

    return f"{IDENTIFIER_SYSTEM}|{task_identifier(issuer, encounter)}"


@bp.post("/review/<encounter_id>/sign-off")
def sign_off_view(encounter_id: str):
    launch = _require_session()
    check_csrf(launch.csrf)
    report = _review(encounter_id, fresh=True)  # sign off what the chart says now
    ext = current_app.extensions["unitguard"]
    settings = ext.settings
    result = sign_off(
        report,
        store=ext.store,
        issuer=launch.iss,
        owner={"reference": settings.coding_owner, "display": settings.coding_owner_display},
        requester=launch.fhir_user,
        write_clean=settings.write_clean_tasks,
        outbox=ext.outbox,
        ehr_accepts_tasks=ext.ehr_accepts_tasks(launch.iss),
    )
    if ext.outbox is not None and result.queued_for_ehr:
        ext.deliver_outbox()
    log.info(
        "sign-off: verdict=%s findings=%d task=%s",
        report.verdict,
        len(report.findings),
        result.reason,
    )
    return redirect(
        url_for("views.review_page", encounter_id=encounter_id, sid=g.url_sid, status=result.reason)
    )


def _age_days(task: dict) -> int:
    try:
        authored = datetime.fromisoformat(task.get("authoredOn", ""))
    except ValueError:
        return 0
    return max(0, (datetime.now(UTC) - authored).days)


def _row(stored) -> dict:
    task = stored.task
    rules = task_rules(task)
    return {
        "id": task["id"],
        "version": stored.version,
        "status": task.get("status"),
        "priority": task.get("priority"),
        "description": task.get("description", ""),
        "rules": rules,
        "dollars": (task_input(task, "dollars-at-risk") or {}).get("value", 0.0),
        "therapist": task_input(task, "therapist"),
        "payer": task_input(task, "payer"),
        "date": task_input(task, "date-of-service"),
        "age": _age_days(task),
        "encounter": (task.get("encounter") or {}).get("reference", ""),
        "owner": (task.get("owner") or {}).get("display")
        or (task.get("owner") or {}).get("reference"),
    }


@bp.get("/queue")
def queue():
    _require_session()
    args = request.args
    sort = {"dollars": "-dollars-at-risk", "age": "authored-on"}.get(
        args.get("sort", "dollars"), "-dollars-at-risk"
    )
    status = args.get("status", "requested,in-progress")
    page, total = current_app.extensions["unitguard"].store.search(
        status=[s for s in status.split(",") if s],
        rule=args.get("rule") or None,
        therapist=args.get("therapist") or None,
        payer=args.get("payer") or None,
        date_from=args.get("from") or None,
        date_to=args.get("to") or None,
        sort=sort,
        count=200,
    )
    return render_template(
        "queue.html", rows=[_row(s) for s in page], total=total, args=args, sid=g.url_sid
    )


@bp.get("/queue/<task_id>")
def task_page(task_id: str):
    launch = _require_session()
    try:
        stored = current_app.extensions["unitguard"].store.read(task_id)
    except TaskNotFound:
        abort(404, description="That review Task no longer exists.")
    findings = []
    for item in stored.task.get("input", []):
        for coding in item["type"].get("coding", []):
            if coding.get("system") == RULE_SYSTEM:
                findings.append(
                    {
                        "rule": coding["code"],
                        "severity": item["type"].get("text", ""),
                        "text": item.get("valueString", ""),
                    }
                )
    return render_template(
        "task.html",
        row=_row(stored),
        task=stored.task,
        findings=findings,
        sid=g.url_sid,
        csrf=launch.csrf,
        message=request.args.get("message"),
        input_system=INPUT_SYSTEM,
    )


@bp.post("/queue/<task_id>/action")
def task_action(task_id: str):
    launch = _require_session()
    check_csrf(launch.csrf)
    store = current_app.extensions["unitguard"].store
    form = request.form
    try:
        version = int(form.get("version", ""))
    except ValueError:
        abort(400, description="The form is missing the Task version; reload the page.")
    try:
        stored = store.read(task_id)
    except TaskNotFound:
        abort(404, description="That review Task no longer exists.")
    task = dict(stored.task)
    action = form.get("action", "")
    note_text = form.get("reason", "").strip()
    if action in ACTIONS:
        task["status"], outcome = ACTIONS[action]
        task["businessStatus"] = {"text": outcome}
        if action == "reject" and not note_text:
            abort(400, description="Give a reason to reject the review.")
    elif action == "reassign":
        owner = form.get("owner", "").strip()
        if not owner:
            abort(400, description="Name who should take the review.")
        task["owner"] = {"display": owner}
    else:
        abort(400, description="Unknown action.")
    if note_text:
        task["note"] = [
            *task.get("note", []),
            {"text": note_text, "time": date.today().isoformat()},
        ]
    task["lastModified"] = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        store.update(task_id, task, if_match=version)
    except VersionConflict:
        return render_template("conflict.html", task_id=task_id, sid=g.url_sid), 412
    return redirect(
        url_for(
            "views.task_page",
            task_id=task_id,
            sid=g.url_sid,
            message=f"Saved: {action.replace('-', ' ')}",
        )
    )
