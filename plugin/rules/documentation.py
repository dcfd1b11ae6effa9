"""Rules on what a reviewer looks for in the note (CMS Benefit Policy Manual ch.15 §220.3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from plugin.domain import Severity
from plugin.rules.base import NOTE, Issue, rule, whole_lines
from plugin.rules.context import Context, DocumentedItem

BPM = "CMS Benefit Policy Manual ch.15 §220.3"


def _day_of(moment: date | datetime) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _missing(ctx: Context, list_name: str) -> Iterator[DocumentedItem]:
    for item in ctx.documented_items:
        if not ctx.item_has(list_name, item):
            yield item


@rule(
    "doc-no-deficit",
    Severity.ERROR,
    f"{BPM}; AMA CPT 97112 descriptor",
    needs=(*NOTE, "Procedure", "Condition"),
)
def doc_no_deficit(ctx: Context) -> Iterator[Issue]:
    """The service's documentation names no specific neuromuscular deficit.

    97112 retrains balance, coordination, kinesthetic sense, posture or proprioception; the note
    (its own note, its Conditions and the visit note) must name the deficit treated, e.g.
    'impaired single-leg balance'. A negated mention ('no dizziness') does not count.
    Source: AMA CPT 97112 descriptor; CMS Benefit Policy Manual ch.15 §220.3 (medical necessity).
    """
    for item in _missing(ctx, "deficit"):
        yield Issue(
            code=item.code,
            message=f"the {item.code} documentation names no specific neuromuscular deficit",
            fix="Name the deficit treated, e.g. 'impaired single-leg balance' or 'decreased "
            "proprioception R ankle'",
            evidence=(item.ref,),
            at_risk=whole_lines(ctx.lines_of(item.code)),
        )


@rule(
    "doc-no-skilled-intervention",
    Severity.ERROR,
    f"{BPM} (skilled services)",
    needs=(*NOTE, "Procedure"),
)
def doc_no_skilled_intervention(ctx: Context) -> Iterator[Issue]:
    """The documentation describes no skilled technique or cueing.

    The note must show why a therapist was needed: the cueing (verbal, tactile, visual), the
    facilitation, perturbation or PNF, and how it was graded. 'No cues needed' is not cueing.
    Source: CMS Benefit Policy Manual ch.15 §220.2-220.3 (skilled therapy services).
    """
    for item in _missing(ctx, "skilled"):
        yield Issue(
            code=item.code,
            message=f"the {item.code} documentation describes no skilled technique or cueing",
            fix="Describe the skilled intervention: the cues (verbal/tactile), facilitation, "
            "perturbation or PNF, and how it was progressed",
            evidence=(item.ref,),
            at_risk=whole_lines(ctx.lines_of(item.code)),
        )


@rule("doc-no-patient-response", Severity.WARNING, f"{BPM}", needs=(*NOTE, "Procedure"))
def doc_no_patient_response(ctx: Context) -> Iterator[Issue]:
    """The documentation records no patient response.

    Reviewers look for tolerance, level of assistance, cues needed and change within the
    session. Recommended, not required, in every note: a warning.
    Source: CMS Benefit Policy Manual ch.15 §220.3; the seed guides on 97112 audits.
    """
    for item in _missing(ctx, "response"):
        yield Issue(
            code=item.code,
            message=f"the {item.code} documentation records no patient response",
            fix="Record how the patient responded: tolerance, assistance level, cues needed, "
            "measurable change",
            evidence=(item.ref,),
        )


@rule(
    "doc-no-functional-goal",
    Severity.ERROR,
    f"{BPM}; ch.15 §220.1.2 (plan of care goals)",
    needs=("Goal",),
)
def doc_no_functional_goal(ctx: Context) -> Iterator[Issue]:
    """No active, measurable functional goal supports the service.

    The goals the service names (pertainsToGoal), or else the patient's goals, must include one
    that is active or accepted and measurable (a target measure with a detail or due date).
    Source: CMS Benefit Policy Manual ch.15 §220.1.2 (plan of care with long-term goals).
    """
    goals = {g.ref: g for g in ctx.visit.goals}
    for item in ctx.documented_items:
        linked = [goals[r] for r in item.goal_refs if r in goals]
        candidates = linked or list(goals.values())
        if any(g.active and g.measurable for g in candidates):
            continue
        seen = (
            f"{len(candidates)} goal(s) found, none active and measurable"
            if candidates
            else "no goal found"
        )
        yield Issue(
            code=item.code,
            message=f"no active, measurable functional goal supports {item.code} ({seen})",
            fix="Link the service to an active goal with a measurable target, e.g. 'Berg "
            ">= 48/56 in 4 weeks'",
            evidence=(item.ref, *item.goal_refs),
            at_risk=whole_lines(ctx.lines_of(item.code)),
        )


@rule(
    "doc-no-objective-measure",
    Severity.WARNING,
    "CMS Benefit Policy Manual ch.15 §220.3 D",
    needs=("Observation",),
)
def doc_no_objective_measure(ctx: Context) -> Iterator[Issue]:
    """The visit records no objective measure.

    CMS recommends, and does not require, standardized measures to quantify progress: a warning.
    Source: CMS Benefit Policy Manual ch.15 §220.3 D ('Such tools are not required, but their
    use will enhance the justification for needed therapy').
    """
    if not any(m.this_visit for m in ctx.visit.measures):
        yield Issue(
            code=None,
            message="the visit records no objective measure (no numeric Observation)",
            fix="Record a standardized measure, e.g. Berg Balance Scale, TUG or single-leg stance "
            "time",
            evidence=(ctx.visit.encounter,),
        )


@rule(
    "doc-no-progress",
    Severity.WARNING,
    "CMS Benefit Policy Manual ch.15 §220.3 D",
    needs=("Observation",),
)
def doc_no_progress(ctx: Context) -> Iterator[Issue]:
    """Objective measures exist but none can be compared with an earlier value.

    Progress is shown by the same measure taken before. Source: CMS Benefit Policy Manual
    ch.15 §220.3 D (measures at the beginning, during and after treatment).
    """
    current = [m for m in ctx.visit.measures if m.this_visit]
    if not current:
        return
    day = ctx.visit.day
    earlier_codes = {
        m.code
        for m in ctx.visit.measures
        if not m.this_visit and (day is None or m.when is None or _day_of(m.when) < day)
    }
    if not any(m.code in earlier_codes for m in current):
        yield Issue(
            code=None,
            message=f"{len(current)} objective measure(s) this visit, none with an earlier "
            "value of the same measure",
            fix="Repeat a baseline measure (same instrument) so progress can be shown",
            evidence=tuple(m.ref for m in current),
        )


@rule(
    "doc-unsigned",
    Severity.ERROR,
    "CMS Benefit Policy Manual ch.15 §220.3 E",
    needs=("DocumentReference",),
)
def doc_unsigned(ctx: Context) -> Iterator[Issue]:
    """The visit note is not signed.

    A treatment note needs the signature and professional identification of the qualified
    professional: a DocumentReference with docStatus final and an authenticator.
    Source: CMS Benefit Policy Manual ch.15 §220.3 E.
    """
    if not ctx.visit.note_signed:
        state = (
            "the visit note is not signed (not final, or no authenticator)"
            if ctx.visit.has_note
            else "no visit note is attached to the visit"
        )
        yield Issue(
            code=None,
            message=state,
            fix="Sign the visit note (final, with the therapist as authenticator)",
            evidence=(ctx.visit.encounter,),
            at_risk=whole_lines(ctx.lines),  # an unsigned note denies the whole visit
        )


@rule(
    "doc-no-total-time",
    Severity.ERROR,
    "CMS Benefit Policy Manual ch.15 §220.3 E",
    needs=(*NOTE, "Procedure"),
)
def doc_no_total_time(ctx: Context) -> Iterator[Issue]:
    """Total treatment time or total timed code minutes is not documented.

    Both are required elements of every treatment note: 'Total timed code treatment minutes
    and total treatment time in minutes. Total treatment time includes the minutes for timed
    code treatment and untimed code treatment.' Total timed minutes are documented by a stated
    total in the note, or by each timed intervention's own minutes.
    Source: CMS Benefit Policy Manual ch.15 §220.3 E.
    """
    timed = [s for s in ctx.visit.services if s.code in ctx.policy.timed]
    timed_lines = [ln for ln in ctx.lines if ln.code in ctx.policy.timed]
    missing = []
    if ctx.visit.total_minutes is None:
        missing.append("total treatment time (no Encounter.length, none stated in the note)")
    timed_documented = ctx.visit.stated_timed_minutes is not None or (
        timed and all(s.seconds is not None for s in timed)
    )
    if (timed or timed_lines) and not timed_documented:
        missing.append(
            "total timed code minutes (no stated total, not every timed "
            "intervention has its minutes)"
        )
    if missing:
        yield Issue(
            code=None,
            message=f"not documented: {'; '.join(missing)}",
            fix="Record the total timed code minutes and the total treatment time in minutes "
            "in the note",
            evidence=(ctx.visit.encounter,),
            at_risk=whole_lines(timed_lines),
        )
