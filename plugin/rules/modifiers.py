"""Rules on line modifiers: GP/GO/GN and CQ/CO (59/X{EPSU} and the NCCI PTP edits: ptp.py)."""

from __future__ import annotations

from collections.abc import Iterator

from plugin.domain import BilledLine, Severity
from plugin.rules.base import AtRisk, Issue, rule, whole_lines
from plugin.rules.context import Context

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
                at_risk=whole_lines([line]),
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

    Also fires for more than one discipline modifier on a line. CQ beside GO or CO beside GP (an
    assistant modifier of the other discipline) is wrong-discipline-code's finding.
    Source: CMS Claims Processing Manual ch.5 §20.1 and §10.6.
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
        disciplines = _performer_disciplines(ctx, line.code)
        if mods and disciplines and to_discipline[mods[0]] not in disciplines:
            furnished = "/".join(sorted(disciplines))
            yield Issue(
                code=line.code,
                message=f"{line.code} billed with {mods[0]} ({to_discipline[mods[0]]}) but "
                f"furnished by {furnished}",
                fix=f"Use the modifier of the {furnished} plan of care",
                evidence=(line.ref, *(s.ref for s in ctx.services_by_code.get(line.code, []))),
                at_risk=whole_lines([line]),
            )


def assistant_units(
    assistant: int, therapist: int, units: int, timed: bool, share: float, first: int = 8
) -> int:
    """How many of a code's billed units need CQ/CO, judged per unit (CY2022 on).

    ``assistant``: minutes an assistant furnished alone; ``therapist``: minutes the therapist
    furnished (alone or with the assistant). Untimed codes: one unit, CQ/CO when the
    assistant's share passes the de minimis. Timed codes: each provider's full 15-minute
    units first (the assistant's need the modifier); of the remaining units, a unit the
    therapist's own leftover minutes support (8 or more) is billed without it, and otherwise
    the assistant's share of the leftover minutes decides; when two units remain and each
    furnished 9-14 leftover minutes, one unit carries the modifier and one does not.
    """
    if units <= 0 or assistant <= 0:
        return 0
    if not timed:
        return min(units, 1) if assistant / (assistant + therapist) > share else 0
    full_assistant, rest_assistant = divmod(assistant, 15)
    full_therapist, rest_therapist = divmod(therapist, 15)
    needed = min(full_assistant, units)
    remaining = max(0, units - full_assistant - full_therapist)
    if remaining == 0 or rest_assistant == 0:
        return needed
    if remaining >= 2 and 9 <= rest_assistant <= 14 and 9 <= rest_therapist <= 14:
        return needed + 1
    if rest_therapist >= first:
        return needed + max(0, remaining - 1)
    if rest_assistant / (rest_assistant + rest_therapist) > share:
        return needed + remaining
    return needed


@rule(
    "missing-assistant-modifier",
    Severity.ERROR,
    "CMS 'Billing Examples Using CQ/CO Modifiers'; Pub. 100-04 ch.5 §20.1; CY2022 PFS final rule",
    billing=True,
)
def missing_assistant_modifier(ctx: Context) -> Iterator[Issue]:
    """A billed unit in which an assistant furnished more than the de minimis lacks CQ/CO.

    Since CY2022 the 10% de minimis is applied to each billed unit of a timed code (and to the
    whole of an untimed code), not to the code's minutes as a whole: CQ on one of a PTA's two
    units is not enough. Only minutes the assistant furnished alone count; a performer whose
    role is supervising or co-signing did not furnish the minutes.
    Source: CMS 'Billing Examples Using CQ/CO Modifiers for Services Furnished In Whole or In
    Part by PTAs and OTAs'; Pub. 100-04 ch.5 §20.1; APTA quick guide (per-unit de minimis).
    """
    share = ctx.policy.de_minimis_share
    wanted = {"PT": "CQ", "OT": "CO"}
    for code, services in sorted(ctx.services_by_code.items()):
        lines = ctx.lines_of(code)
        if not lines:
            continue
        counted = [s for s in services if not s.unqualified_only]
        alone = [s for s in counted if s.assistant_only]
        if not alone:
            continue
        assistant = int(sum(s.seconds or 0.0 for s in alone) // 60)
        therapist = int(sum(s.seconds or 0.0 for s in counted if not s.assistant_only) // 60)
        timed = code in ctx.policy.timed
        billed = sum(line.units for line in lines)
        if not timed and alone and len(alone) == len(counted):
            assistant, therapist = max(assistant, 1), 0
        needed = assistant_units(
            assistant, therapist, billed, timed, share, ctx.policy.first_unit_minutes
        )
        disciplines = {p.discipline for s in alone for p in s.furnishing}
        modifier = next((wanted[d] for d in sorted(disciplines) if d in wanted), None)
        if not modifier or needed == 0:
            continue
        marked = sum(line.units for line in lines if modifier in line.modifiers)
        if marked >= needed:
            continue
        yield Issue(
            code=code,
            message=f"an assistant furnished {assistant} of {assistant + therapist} minutes of "
            f"{code} alone: {needed} of {billed} billed unit(s) need {modifier}, "
            f"{marked} carry it",
            fix=f"Bill {needed} unit(s) of {code} with {modifier} (paid at "
            f"{ctx.policy.assistant_payment_share:.0%}) and the rest without",
            evidence=tuple(s.ref for s in alone) + tuple(line.ref for line in lines),
            at_risk=_differential(ctx, lines, modifier, needed - marked),
        )


def _differential(ctx: Context, lines: list[BilledLine], modifier: str, units: int) -> AtRisk:
    """What billing ``units`` more units without CQ/CO overstates: Medicare pays those units at
    85% (CY2022 on), so 15% of each affected line's units, spread over the lines that lack the
    modifier in their order (contract §2b: not the whole line)."""
    cut = 1 - ctx.policy.assistant_payment_share
    found = []
    for line in lines:
        if units <= 0:
            break
        if modifier in line.modifiers:
            continue
        taken = min(units, line.units)
        units -= taken
        found.append((line.ref, taken * (line.unit_price or 0.0) * cut))
    return tuple(found)
