"""Rules on line modifiers: GP/GO/GN, CQ/CO and 59/X{EPSU} beside the NCCI PTP edits."""

from __future__ import annotations

from collections.abc import Iterator

from plugin.domain import BilledLine, Severity
from plugin.rules.base import Issue, rule
from plugin.rules.context import Context
from plugin.rules.overlap import overlapping_pairs

CH5_GX = "CMS Claims Processing Manual ch.5 §20.1 and §10.6 (GP/GO/GN)"


def _discipline_mods(ctx: Context, line: BilledLine) -> list[str]:
    return sorted(m for m in line.modifiers if m in ctx.policy.discipline_modifiers)


@rule("missing-discipline-modifier", Severity.ERROR, CH5_GX, billing=True)
def missing_discipline_modifier(ctx: Context) -> Iterator[Issue]:
    """A therapy line carries none of GP, GO or GN.

    Every line with an always-therapy code must show the discipline of the plan of care it was
    furnished under. Source: CMS Claims Processing Manual ch.5 §20.1 and §10.6 (WPS MAC copy).
    """
    for line in ctx.lines:
        if line.code in ctx.policy.therapy_codes and not _discipline_mods(ctx, line):
            yield Issue(
                code=line.code,
                message=f"{line.code} line ({line.ref}) has no GP, GO or GN modifier",
                fix="Add GP (physical therapy), GO (occupational therapy) or GN (speech-language "
                "pathology) to match the plan of care",
                evidence=(line.ref,),
                dollars_at_risk=line.amount or 0.0,
            )


def _performer_disciplines(ctx: Context, code: str) -> set[str]:
    known = {"PT", "OT", "SLP"}
    return {
        p.discipline
        for s in ctx.services_by_code.get(code, [])
        for p in s.performers
        if p.discipline in known
    }


@rule("discipline-modifier-mismatch", Severity.ERROR, CH5_GX, billing=True)
def discipline_modifier_mismatch(ctx: Context) -> Iterator[Issue]:
    """GP/GO/GN does not match the discipline of who furnished the service.

    Also fires for more than one discipline modifier on a line, and for CQ without GP or CO
    without GO. Source: CMS Claims Processing Manual ch.5 §20.1 and §10.6.
    """
    to_discipline = ctx.policy.discipline_modifiers
    for line in ctx.lines:
        mods = _discipline_mods(ctx, line)
        if len(mods) > 1:
            yield Issue(
                line.code,
                f"{line.code} line carries {' and '.join(mods)}; "
                "only one discipline modifier is allowed",
                "Keep the one modifier of the plan of care",
                (line.ref,),
            )
            continue
        for assistant, partner in ctx.policy.assistant_modifiers.items():
            if assistant in line.modifiers and partner not in line.modifiers:
                yield Issue(
                    line.code,
                    f"{line.code} line has {assistant} without {partner}",
                    f"{assistant} goes with {partner}; correct the modifiers",
                    (line.ref,),
                )
        disciplines = _performer_disciplines(ctx, line.code)
        if mods and disciplines and to_discipline[mods[0]] not in disciplines:
            furnished = "/".join(sorted(disciplines))
            yield Issue(
                code=line.code,
                message=f"{line.code} billed with {mods[0]} ({to_discipline[mods[0]]}) but "
                f"furnished by {furnished}",
                fix=f"Use the modifier of the {furnished} plan of care",
                evidence=(line.ref, *(s.ref for s in ctx.services_by_code.get(line.code, []))),
                dollars_at_risk=line.amount or 0.0,
            )


@rule(
    "missing-assistant-modifier",
    Severity.ERROR,
    "CMS 'Billing Examples Using CQ/CO Modifiers'; Pub. 100-04 ch.5 §20.1",
    billing=True,
)
def missing_assistant_modifier(ctx: Context) -> Iterator[Issue]:
    """An assistant (PTA/OTA) furnished more than the de minimis share without CQ/CO.

    Minutes an assistant furnished alone (not together with the therapist) above the policy's
    de minimis share (10%) of a service mean the line needs CQ (PT) or CO (OT).
    Source: CMS CQ/CO billing examples; Pub. 100-04 ch.5 §20.1; CY2020/CY2022 PFS final rules.
    """
    share = ctx.policy.de_minimis_share
    wanted = {"PT": "CQ", "OT": "CO"}
    for code, services in sorted(ctx.services_by_code.items()):
        lines = ctx.lines_of(code)
        if not lines:
            continue
        total = sum(s.minutes or 0 for s in services)
        alone = [s for s in services if s.assistant_only]
        assistant_minutes = sum(s.minutes or 0 for s in alone)
        whole_untimed = code not in ctx.policy.timed and alone and len(alone) == len(services)
        if not (whole_untimed or (total and assistant_minutes / total > share)):
            continue
        disciplines = {p.discipline for s in alone for p in s.performers}
        modifier = next((wanted[d] for d in sorted(disciplines) if d in wanted), None)
        if modifier and not any(modifier in line.modifiers for line in lines):
            yield Issue(
                code=code,
                message=f"an assistant furnished {assistant_minutes} of {total} minutes of {code} "
                f"alone (over {share:.0%}) but no line carries {modifier}",
                fix=f"Add {modifier} to the {code} line (paid at "
                f"{ctx.policy.assistant_payment_share:.0%})",
                evidence=tuple(s.ref for s in alone) + tuple(line.ref for line in lines),
                dollars_at_risk=sum(line.amount or 0.0 for line in lines)
                * (1 - ctx.policy.assistant_payment_share),
            )


def _same_day_lines(ctx: Context) -> list[BilledLine]:
    day = ctx.visit.day
    return list(ctx.lines) + [
        line for line in ctx.visit.other_lines if day is not None and line.day == day
    ]


@rule(
    "missing-distinct-modifier",
    Severity.ERROR,
    "CMS NCCI Policy Manual ch.1; Medicare NCCI PTP edits (practitioner)",
    billing=True,
)
def missing_distinct_modifier(ctx: Context) -> Iterator[Issue]:
    """A code pair that the PTP policy data bundles is billed on one date without 59/X{EPSU}.

    Under an NCCI procedure-to-procedure edit in force on the date, the column-two code is
    denied beside the column-one code unless a distinct-service modifier is appended and the
    edit allows one (modifier indicator 1); indicator 0 allows none.
    Source: CMS NCCI PTP edits (quarterly practitioner file); APTA 'NCCI Code Edits'.
    """
    day_lines = _same_day_lines(ctx)
    codes = {line.code for line in day_lines}
    distinct = ctx.policy.distinct_modifiers
    for (col1, col2), edit in sorted(ctx.policy.ptp_edits_for(ctx.visit.day).items()):
        if col1 not in codes or col2 not in codes:
            continue
        for line in ctx.lines_of(col2):
            has_modifier = bool(line.modifiers & distinct)
            if edit.modifier_indicator == "1" and has_modifier:
                continue
            reason = (
                "no modifier can unbundle it (modifier indicator 0)"
                if edit.modifier_indicator == "0"
                else "without 59 or X{EPSU}"
            )
            yield Issue(
                code=col2,
                message=f"{col2} billed beside {col1} on {ctx.visit.day}, an NCCI pair "
                f"(column 1 {col1}), {reason}",
                fix=f"If {col2} was a separate session from {col1}, add 59 or XS and document it; "
                f"otherwise remove {col2}",
                evidence=(line.ref,),
                dollars_at_risk=line.amount or 0.0,
            )


@rule(
    "unsupported-distinct-modifier",
    Severity.ERROR,
    "CMS NCCI Policy Manual ch.1 §E (modifier 59 and X{EPSU})",
    billing=True,
)
def unsupported_distinct_modifier(ctx: Context) -> Iterator[Issue]:
    """59/XS is claimed but the minutes overlap or both services serve the same goal.

    A distinct-service modifier says the services were separate; the documentation must show
    separate times and separate clinical purposes. Source: CMS NCCI Policy Manual ch.1 (modifier
    59 and X{EPSU}); the seeds' auditors' view ('plainly separate intentions').
    """
    for line in ctx.lines:
        claimed = sorted(line.modifiers & ctx.policy.session_modifiers)
        if not claimed:
            continue
        mine = ctx.services_by_code.get(line.code, [])
        for other_code, others in sorted(ctx.services_by_code.items()):
            if other_code == line.code or other_code not in ctx.billed_units:
                continue
            shared = next((m for _, _, m in overlapping_pairs(mine, others)), 0)
            goals = sorted(
                {g for a in mine for g in a.goal_refs} & {g for b in others for g in b.goal_refs}
            )
            if shared:
                why = f"their minutes overlap by {shared}"
            elif goals:
                why = f"both serve {goals[0]}"
            else:
                continue
            yield Issue(
                code=line.code,
                message=f"{line.code} carries {'/'.join(claimed)} beside {other_code} but {why}",
                fix=f"Document separate times and a separate goal for {line.code}, "
                f"or remove {'/'.join(claimed)}",
                evidence=(line.ref, *(s.ref for s in mine + others)),
                dollars_at_risk=line.amount or 0.0,
            )
