"""The therapist's review of the launched visit and its sign-off to coding review."""

from __future__ import annotations

import logging

from flask import abort, current_app, g, redirect, render_template, request, url_for

from plugin.domain import Severity
from plugin.errors import InputError
from plugin.policy import load_policy
from plugin.report import to_dict
from plugin.review import review_bundle
from plugin.rules.episode import episode_status
from plugin.tasks.build import task_identifier
from plugin.tasks.names import People, people
from plugin.web import money, notices, wording
from plugin.web.page_access import require_clinician
from plugin.web.security import check_csrf
from plugin.web.writeback import sign_off

log = logging.getLogger(__name__)

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


def _review(encounter_id: str, fresh: bool = False):
    """Review the launched visit: from this session's short-lived cache unless ``fresh``, else
    (and then cached) from the EHR. Only a visit that could be reviewed is cached."""
    launch = require_clinician()
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


def review_page(encounter_id: str):
    report = _review(encounter_id, fresh=request.args.get("refresh") == "1")
    ext = current_app.extensions["unitguard"]
    fired = {f.rule for f in report.findings}
    unchecked = set(report.unchecked)  # not decided: what it needs could not be read
    checklist = [
        (label, "unread" if rule in unchecked else "missing" if rule in fired else "ok")
        for label, rule in CHECKLIST
    ]
    existing = ext.store.search(identifier=_identifier(g.launch.iss, report.visit.encounter))[0]
    review = to_dict(report)
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
        money=money.explain(review, review["findings"]),
        charges={s["code"]: s["billed_amount"] for s in review["services"] if s["billed_amount"]},
    )


def _identifier(issuer: str, encounter: str) -> str:
    from plugin.tasks.build import IDENTIFIER_SYSTEM

    return f"{IDENTIFIER_SYSTEM}|{task_identifier(issuer, encounter)}"


def sign_off_view(encounter_id: str):
    launch = require_clinician()
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
