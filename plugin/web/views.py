"""The pages people use: the landing page and login, the therapist's review at sign-off, and the
coders' queue and Task page. Who may see what follows contract section 5 (plugin.web.roles)."""

from __future__ import annotations

import csv
import io
import logging
import math
from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from plugin.csv_safety import safe_text
from plugin.domain import Severity
from plugin.errors import InputError
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.rules.episode import episode_status
from plugin.tasks.build import (
    INPUT_SYSTEM,
    history_entry,
    task_history,
    task_identifier,
    task_input,
    task_rules,
    task_snapshot,
)
from plugin.tasks.names import People, people
from plugin.tasks.store import TaskNotFound, VersionConflict
from plugin.web import notices, wording
from plugin.web.roles import CODER
from plugin.web.security import SESSION_COOKIE, check_csrf, resolve_session
from plugin.web.writeback import CLOSED, reopened_input, sign_off

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
# action -> (label in the history, new status, business status); "reopen" opens a closed Task
ACTIONS = {
    "start": ("Started", "in-progress", "in-review"),
    "complete-corrected": ("Completed: corrected", "completed", "corrected"),
    "complete-no-change": ("Completed: no change", "completed", "no-change"),
    "reject": ("Rejected", "rejected", "rejected"),
    "reassign": ("Reassigned", None, None),
    "reopen": ("Reopened", "requested", "reopened"),
}
OPEN = ("requested", "accepted", "in-progress")
# the queue's filters and sort: the only query parameters its links carry on
QUEUE_PARAMS = frozenset("state rule therapist payer owner from to q reopened mine sort".split())
PAGE_SIZE = 50
SORTS = {
    "dollars": "-dollars-at-risk",
    "age": "authored-on",
    "date": "-date-of-service",
    "date-asc": "date-of-service",
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
            description="Open unitguard from the patient's chart, or sign in as a coder "
            "(your session has ended or was never started).",
        )
    return g.launch


def _require_coder():
    launch = _require_session()
    if launch.role != CODER:
        abort(
            403,
            description="The coding work queue is for coders. This session was opened from "
            "one patient's chart and shows that patient's visit only.",
        )
    return launch


def _require_clinician():
    launch = _require_session()
    if launch.role == CODER or not launch.patient:
        abort(
            403,
            description="Reviews are opened from the patient's visit in the chart; a coder's "
            "session works the queue.",
        )
    return launch


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/")
def landing():
    ext = current_app.extensions["unitguard"]
    registry = getattr(ext, "registry", None)
    ehrs = [(e.name, e.issuer) for e in registry.ehrs] if registry is not None else []
    return render_template("landing.html", ehrs=ehrs, launch=g.launch, sid=g.url_sid)


@bp.get("/logout")
def logout_confirm():
    if g.launch is None:
        return render_template("logout.html", ended=True, sid=None)
    return render_template("logout.html", ended=False, sid=g.url_sid, csrf=g.launch.csrf)


@bp.post("/logout")
def logout():
    ext = current_app.extensions["unitguard"]
    if g.launch is not None:
        check_csrf(g.launch.csrf)
        ext.sessions.delete(g.sid)
        ext.visit_cache.drop(g.sid)
        ext.revoke_tokens(g.launch)  # at the EHR too, where it offers revocation (best effort)
        log.info("session ended by the user")
    response = Response(render_template("logout.html", ended=True, sid=None))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _review(encounter_id: str, fresh: bool = False):
    """Review the launched visit: from this session's short-lived cache unless ``fresh``, else
    (and then cached) from the EHR. Only a visit that could be reviewed is cached."""
    launch = _require_clinician()
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
    if launch.patient and report.visit.patient and report.visit.patient != launch.patient:
        abort(403, description="This visit is another patient's; open it from their chart.")
    if cached is None:
        ext.visit_cache.put(g.sid, encounter_id, bundle, reread=fresh)
    g.bundle = bundle
    return report


def _therapist_ref(report) -> str | None:
    return next((p.ref for s in report.visit.services for p in s.performers), None)


def _people(report) -> People:
    return people(getattr(g, "bundle", {}) or {}, report.visit.patient, _therapist_ref(report))


def _errors(report) -> int:
    return sum(1 for f in report.findings if f.severity is Severity.ERROR)


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
        who=_people(report),
        problems=wording.grouped(report.findings),
        title=wording.title,
        units=wording.units,
        advice=wording.billing_advice(report.services, report.visit.billed is not None),
        errors=_errors(report),
        episodes=episode_status(report.visit, load_policy()),
        checklist=checklist,
        sid=g.url_sid,
        csrf=g.launch.csrf,
        task=existing[0] if existing else None,
        status=notices.sign_off_notice(request.args.get("status")),
        Severity=Severity,
    )


def _identifier(issuer: str, encounter: str) -> str:
    from plugin.tasks.build import IDENTIFIER_SYSTEM

    return f"{IDENTIFIER_SYSTEM}|{task_identifier(issuer, encounter)}"


@bp.post("/review/<encounter_id>/sign-off")
def sign_off_view(encounter_id: str):
    launch = _require_clinician()
    check_csrf(launch.csrf)
    report = _review(encounter_id, fresh=True)  # sign off what the chart says now
    errors = sum(1 for f in report.findings if f.severity.value == "error")
    if errors and request.form.get("confirm") != "yes":
        # the page asks the therapist to confirm; a POST without it signs nothing
        abort(
            400,
            description=f"This visit has {errors} error(s): tick 'Send this visit to coding "
            "review' to confirm, or fix the note first and re-read it from the chart.",
        )
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
        people=_people(report),
        signer=launch.user_name,
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
        url_for("views.review_page", encounter_id=encounter_id, sid=g.url_sid, status=result.code)
    )


def _age_days(task: dict, now: datetime | None = None) -> int:
    try:
        authored = datetime.fromisoformat(task.get("authoredOn", ""))
    except ValueError:
        return 0
    if authored.tzinfo is None:
        authored = authored.replace(tzinfo=UTC)
    return max(0, ((now or datetime.now(UTC)) - authored).days)


def _owner(task: dict) -> str:
    owner = task.get("owner") or {}
    return owner.get("display") or owner.get("reference") or ""


def _row(stored) -> dict:
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
        "owner": _owner(task),
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


@bp.get("/queue")
def queue():
    launch = _require_coder()
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
    # Only the queue's own parameters go back into its links: url_for reads _method, _external,
    # _scheme and _anchor as its own (a BuildError, 500, or links to the request's Host).
    query = {k: v for k, v in args.items() if k in QUEUE_PARAMS and v}
    return render_template(
        "queue.html",
        rows=[_row(s) for s in rows],
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
    """A CSV cell a spreadsheet will not run as a formula (plugin.csv_safety, as the audit's)."""
    return safe_text(cell)


@bp.get("/queue.csv")
def queue_csv():
    launch = _require_coder()
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
            r = _row(stored)
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
        row=_row(stored),
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


@bp.get("/queue/<task_id>")
def task_page(task_id: str):
    launch = _require_session()
    stored = _readable_task(task_id, launch)
    labels = {action: label for action, (label, _, _) in ACTIONS.items()}
    message = notices.task_notice(request.args.get("message"), labels)
    return _task_page(stored, launch, message=message)


@bp.get("/queue/<task_id>/review")
def task_review(task_id: str):
    """The review as it stood when the therapist signed off (read from the Task)."""
    launch = _require_session()
    stored = _readable_task(task_id, launch)
    snapshot = task_snapshot(stored.task)
    if snapshot is None:
        abort(404, description="This Task was written before reviews were kept with it.")
    return render_template(
        "snapshot.html", row=_row(stored), report=snapshot, title=wording.title, sid=g.url_sid
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


@bp.post("/queue/<task_id>/action")
def task_action(task_id: str):
    launch = _require_coder()
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
        label = f"Reassigned to {_owner(task)}"
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
    return redirect(url_for("views.task_page", task_id=task_id, sid=g.url_sid, message=action))
