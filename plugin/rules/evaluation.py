"""Rules on evaluations and re-evaluations (97161-97168): who may furnish them, under which
discipline they are billed, and whether a re-evaluation was indicated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from plugin.domain import Service, Severity
from plugin.rules.base import NOTE, Issue, rule, whole_lines
from plugin.rules.context import Context

KIND = {True: "re-evaluation", False: "evaluation"}
ASSISTANT = {"PT": "PTA", "OT": "OTA"}


@rule(
    "eval-by-assistant",
    Severity.ERROR,
    "CMS Benefit Policy Manual ch.15 §220 (evaluation by a clinician), §220.3 C, §230.1",
)
def eval_by_assistant(ctx: Context) -> Iterator[Issue]:
    """An evaluation or re-evaluation (97161-97168) was furnished by a PTA or OTA alone.

    Only the therapist may evaluate: "EVALUATION is a separately payable comprehensive service
    provided by a clinician" (a physician, NPP or therapist, not an assistant), and
    "Reevaluation requires the same professional skills as evaluation". An assistant working
    beside the therapist, or a therapist who co-signs, does not make the assistant's evaluation
    the therapist's. Fires whether or not the evaluation is billed yet.
    Source: CMS Benefit Policy Manual ch.15 §220 (definitions) and §220.3 C (stored copy of the
    manual pages, old.bansdoc.gov.bd p.167 and p.200); §230.1 (assistants).
    """
    for code, services in sorted(ctx.services_by_code.items()):
        discipline = ctx.policy.evaluations.get(code)
        if discipline is None:
            continue
        alone = [s for s in services if s.assistant_only]
        if not alone:
            continue
        kind = KIND[code in ctx.policy.reevaluations]
        assistant = ASSISTANT.get(discipline, "assistant")
        yield Issue(
            code=code,
            message=f"the {code} {kind} was furnished by a {'/'.join(_who(alone))} alone; only "
            "the therapist may evaluate",
            fix=f"Have the {discipline} furnish and document the {kind}; a {assistant} may "
            f"collect data for it but not evaluate",
            evidence=tuple(s.ref for s in alone),
            at_risk=whole_lines(ctx.lines_of(code)),
        )


def _who(services: list[Service]) -> list[str]:
    roles = {ASSISTANT.get(p.discipline or "", "assistant") for s in services for p in s.furnishing}
    return sorted(roles)


@rule(
    "wrong-discipline-code",
    Severity.ERROR,
    "CMS Claims Processing Manual ch.5 §20.1 and §10.6 (discipline modifiers, CQ/CO)",
    billing=True,
)
def wrong_discipline_code(ctx: Context) -> Iterator[Issue]:
    """A code is billed under the other discipline.

    The evaluation codes belong to one discipline each: an OT evaluation (97165-97168) billed
    under GP or furnished by a PT, a PT evaluation (97161-97164) under GO or furnished by an OT.
    "Discipline-specific evaluation/re-evaluation codes must carry their own discipline's
    modifier". The assistant modifiers too: CQ (a PTA) goes with GP, CO (an OTA) with GO, so CQ
    beside GO or CO beside GP is billed under the other discipline.
    Source: CMS Claims Processing Manual ch.5 §20.1 and §10.6 (findacode's copy); CY2017 PFS
    final rule (97161-97168 'always therapy', GP or GO by plan of care); CMS 'Billing Examples
    Using CQ/CO Modifiers' (CQ with GP, CO with GO).
    """
    to_discipline = ctx.policy.discipline_modifiers
    for line in ctx.lines:
        mods = sorted(m for m in line.modifiers if m in to_discipline)
        owner = ctx.policy.evaluations.get(line.code)
        if owner is not None:
            problems = [f"billed under {m}" for m in mods if to_discipline[m] != owner]
            others = _furnished_by_other(ctx, line.code, owner)
            if others:
                problems.append(f"furnished by {'/'.join(others)}")
            if problems:
                kind = KIND[line.code in ctx.policy.reevaluations]
                yield Issue(
                    code=line.code,
                    message=f"{line.code} is a {owner} {kind}, {' and '.join(problems)}",
                    fix=f"Bill the {kind} code of the discipline that evaluated, under its own "
                    "modifier (PT: 97161-97164 with GP; OT: 97165-97168 with GO)",
                    evidence=(line.ref, *(s.ref for s in ctx.services_by_code.get(line.code, []))),
                    at_risk=whole_lines([line]),
                )
        for assistant, partner in sorted(ctx.policy.assistant_modifiers.items()):
            wrong = [m for m in mods if m != partner]
            if assistant in line.modifiers and mods and wrong:
                yield Issue(
                    code=line.code,
                    message=f"{line.code} line has {assistant} beside {'/'.join(wrong)}: "
                    f"{assistant} goes with {partner}",
                    fix=f"Use the assistant modifier of the plan of care's discipline "
                    f"({assistant} with {partner})",
                    evidence=(line.ref,),
                    at_risk=whole_lines([line]),
                )


def _furnished_by_other(ctx: Context, code: str, owner: str) -> list[str]:
    """The disciplines (PT or OT, assistants included) other than ``owner`` that furnished the
    code's services."""
    found = {
        p.discipline
        for s in ctx.services_by_code.get(code, [])
        for p in s.furnishing
        if p.discipline in ("PT", "OT") and p.discipline != owner
    }
    return sorted(d for d in found if d)


@rule(
    "reevaluation-not-indicated",
    Severity.WARNING,
    "CMS Benefit Policy Manual ch.15 §220.3 C; NCCI Policy Manual ch.XI",
    needs=(*NOTE, "Procedure"),
)
def reevaluation_not_indicated(ctx: Context) -> Iterator[Issue]:
    """A re-evaluation (97164, 97168) names no indication, or recurs on a schedule.

    "Indications for a re-evaluation include new clinical findings, a significant change in the
    patient's condition, or failure to respond to the therapeutic interventions outlined in the
    plan of care", and one "may be appropriate prior to planned discharge"; "A re-evaluation is
    not a routine, recurring service". Fires when the re-evaluation's documentation (its own
    note, reasons and the visit note, goals left out) names none of these, when it reads as
    routine ("routine 30-day re-eval", "per policy", "due for recert"), or when the patient's
    re-evaluations of the code fall the same number of days apart (policy data). A warning:
    the reviewer decides whether the record shows the need.
    Source: CMS Benefit Policy Manual ch.15 §220.3 C (as quoted by pt-management.com and
    experts123); NCCI Policy Manual ch.XI (re-evaluations 'should not be routinely reported',
    AmeriHealth's summary of the 2023 manual).
    """
    reevaluations = ctx.policy.reevaluations
    codes = sorted(reevaluations & (set(ctx.services_by_code) | set(ctx.billed_units)))
    for code in codes:
        services = ctx.services_by_code.get(code, [])
        texts = [t for s in services for t in ctx.documentation(s)] or [ctx.visit_note_read]
        indicated = any(ctx.has_affirmed("reevaluation_indication", t) for t in texts if t)
        routine = sorted({w for t in texts if t for w in ctx.affirmed("reevaluation_routine", t)})
        schedule = _schedule(ctx, code)
        if indicated and not routine and not schedule:
            continue
        why = []
        if not indicated:
            why.append(f"names no {ctx.matcher.label('reevaluation_indication')}")
        if routine:
            why.append(f"reads as routine ({', '.join(repr(w) for w in routine[:3])})")
        if schedule:
            days = ", ".join(d.isoformat() for d in schedule)
            gap = (schedule[-1] - schedule[0]).days // (len(schedule) - 1)
            why.append(f"recurs on a schedule (re-evaluations on {days}: about every {gap} days)")
        yield Issue(
            code=code,
            message=f"the {code} re-evaluation {'; it '.join(why)}",
            fix="Document the new clinical finding, significant change or failure to respond that "
            "called for the re-evaluation, or record the reassessment in the progress report "
            "instead of billing a re-evaluation",
            evidence=tuple(s.ref for s in services) or (ctx.visit.encounter,),
        )


def _schedule(ctx: Context, code: str) -> tuple[date, ...]:
    """This visit's re-evaluation and the ones billed before it, when the last ``repeats`` of
    them are the same number of days apart give or take the slack (else ``()``)."""
    day = ctx.visit.day
    plan = ctx.policy.reevaluation_schedule
    if day is None or plan.repeats < 2:
        return ()
    earlier = {
        line.day
        for line in ctx.visit.other_lines
        if line.code == code and line.day is not None and line.day < day and line.units > 0
    }
    if len(earlier) < plan.repeats - 1:
        return ()
    days = (*sorted(earlier)[-(plan.repeats - 1) :], day)
    gaps = [(b - a).days for a, b in zip(days, days[1:], strict=False)]
    return days if max(gaps) - min(gaps) <= plan.slack_days else ()
