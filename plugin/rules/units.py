"""Rules on billed units against documented minutes (the 8-minute rule and its neighbours)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from plugin.domain import Severity
from plugin.rules.base import NOTE, Issue, excess_units, rule, whole_lines
from plugin.rules.context import Context

CH5 = "CMS Claims Processing Manual ch.5 §20.2"


def _plural(n: int, word: str = "unit") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _pool_note(ctx: Context) -> str:
    alloc = ctx.allocation
    day = ""
    if ctx.visit.same_day:
        already = sum(ctx.other_billed.values())
        day = (
            f"; the day's {len(ctx.visit.same_day) + 1} visits are pooled"
            f", {_plural(already)} already billed at the others"
        )
    if ctx.method != "cms":
        return f" (per code, {ctx.method} method{day})"
    if len(ctx.day_minutes) < 2 and not day:
        return ""
    return (
        f" ({alloc.total_minutes} timed minutes in all support {_plural(alloc.total_units)}{day})"
    )


@rule("units-exceed-time", Severity.ERROR, CH5, billing=True, needs=(*NOTE, "Procedure"))
def units_exceed_time(ctx: Context) -> Iterator[Issue]:
    """A billed timed line has more units than the documented minutes support.

    Under ``cms`` the minutes of all timed codes are pooled, each code keeps its full 15-minute
    units and the remaining units go to the largest remaining minutes (a tie either way);
    under ``ama`` and ``strict15`` each code stands alone. Fires for every such line, whatever
    the cause (too few minutes, no minutes, or units moved to the wrong code).
    Source: CMS Claims Processing Manual ch.5 §20.2 C and its worked examples.
    """
    for code, billed in sorted(ctx.billed_units.items()):
        if code not in ctx.policy.timed:
            continue
        supported = ctx.supported(code)
        if billed <= supported:
            continue
        if ctx.total_only:
            what = (
                f"the documented total of {ctx.allocation.total_minutes} timed minutes "
                f"supports {_plural(ctx.allocation.total_units)} in all, so {code} keeps "
                f"{supported} (the per-code split is not documented)"
            )
        else:
            minutes = ctx.day_minutes.get(code, 0)
            what = f"{minutes} documented minutes support {supported}{_pool_note(ctx)}"
        fix = (
            f"Bill {_plural(supported)} of {code} or document the missing minutes"
            if supported
            else f"Remove the {code} line, or document the minutes that support it"
        )
        yield Issue(
            code=code,
            message=f"{_plural(billed)} of {code} billed; {what}",
            fix=fix,
            evidence=tuple(line.ref for line in ctx.lines_of(code)),
            at_risk=excess_units(ctx.lines_of(code), billed - supported),
        )


@rule("units-under-billed", Severity.INFO, CH5, billing=True)
def units_under_billed(ctx: Context) -> Iterator[Issue]:
    """The documented minutes support more units of a timed code than were billed.

    Nothing is wrong with the claim; the clinic may be leaving money on the table.
    Source: CMS Claims Processing Manual ch.5 §20.2 C (units follow the documented minutes).
    """
    if ctx.total_only:
        return
    for code in sorted(ctx.allocation.units):
        supported, billed = ctx.supported(code), ctx.billed_units.get(code, 0)
        if supported > billed:
            yield Issue(
                code=code,
                message=f"{ctx.day_minutes.get(code, 0)} documented minutes of {code} support "
                f"{_plural(supported)}; {billed} billed",
                fix=f"Consider billing {_plural(supported)} of {code} if the minutes are right",
                evidence=tuple(s.ref for s in ctx.services_by_code.get(code, [])),
            )


@rule("under-8-minutes", Severity.ERROR, CH5, billing=True)
def under_8_minutes(ctx: Context) -> Iterator[Issue]:
    """A timed code is billed with fewer than 8 documented minutes that cannot share total time.

    Under ``cms`` minutes under 8 may still earn a unit when pooled with other timed codes
    (the '7 minutes or less' rule); this fires only when no allowed allocation gives the code a
    unit. Under ``ama`` and ``strict15`` each code needs its own 8 (or 15) minutes.
    Source: CMS Claims Processing Manual ch.5 §20.2 C ('do not bill if it lasted < 8 minutes').
    """
    first = ctx.policy.first_unit_minutes
    for code, billed in sorted(ctx.billed_units.items()):
        minutes = ctx.day_minutes.get(code)
        if code not in ctx.policy.timed or billed == 0 or minutes is None or minutes == 0:
            continue
        if minutes < first and ctx.allocation.most.get(code, 0) == 0:
            yield Issue(
                code=code,
                message=f"{code} billed with {minutes} documented minutes"
                f"{' that day' if ctx.visit.same_day else ''}; under {first} minutes "
                f"it earns no unit under the {ctx.method} method",
                fix=f"Remove the {code} line, or document at least {first} minutes",
                evidence=tuple(s.ref for s in ctx.services_by_code.get(code, [])),
            )


@rule(
    "missing-minutes",
    Severity.ERROR,
    "CMS Benefit Policy Manual ch.15 §220.3 E",
    billing=True,
    needs=(*NOTE, "Procedure"),
)
def missing_minutes(ctx: Context) -> Iterator[Issue]:
    """A timed code is billed with neither its own minutes nor a documented total timed minutes.

    A timed code's units rest on documented time. Minutes per code are voluntary for Medicare
    ('contractors shall not require it'), so a note's total timed code minutes is enough; only
    when neither is documented are the units unsupported. Source: CMS Benefit Policy Manual
    ch.15 §220.3 E ('The billing and the total timed code treatment minutes must be
    consistent').
    """
    if ctx.visit.stated_timed_minutes is not None:
        return
    for code, billed in sorted(ctx.billed_units.items()):
        if code in ctx.policy.timed and billed > 0 and code not in ctx.day_minutes:
            yield Issue(
                code=code,
                message=f"{_plural(billed)} of {code} billed with no documented minutes and no "
                "total timed minutes in the note",
                fix=f"Document the total timed code minutes (or the {code} minutes), "
                "or remove the line",
                evidence=tuple(line.ref for line in ctx.lines_of(code)),
                at_risk=whole_lines(ctx.lines_of(code)),
            )


def _line_discipline(ctx: Context, modifiers) -> str:
    for modifier, discipline in ctx.policy.discipline_modifiers.items():
        if modifier in modifiers:
            return discipline
    return "unknown discipline"


@rule(
    "daily-unit-cap",
    Severity.WARNING,
    "Medicare NCCI practitioner MUEs (CMS MUE file in the policy data)",
)
def daily_unit_cap(ctx: Context) -> Iterator[Issue]:
    """Units of a code on one date for one discipline pass its medically unlikely edit (MUE).

    Counts this visit's billed units (or, before charges, the units the minutes support) and the
    patient's other billed lines of the same date. The limit per code is the practitioner MUE
    in force on the date (policy data: the shipped excerpt or CMS's imported quarterly file).
    Source: CMS 'Medicare NCCI Medically Unlikely Edits (MUEs) - Practitioner Services'; an
    MUE denial can be appealed with documentation (MAI 3), so this is a warning, not a denial.
    """
    day = ctx.visit.day
    caps = ctx.policy.unit_caps(day)
    codes = set(ctx.billed_units) | set(ctx.services_by_code)
    codes.update(line.code for line in ctx.visit.other_lines)
    for code in sorted(codes & caps.keys()):
        limit = caps[code]
        per_discipline: dict[str, int] = defaultdict(int)
        if ctx.has_billing:
            for line in ctx.lines_of(code):
                per_discipline[_line_discipline(ctx, line.modifiers)] += line.units
        elif ctx.supported(code):
            services = ctx.services_by_code.get(code, [])
            disciplines = {p.discipline for s in services for p in s.performers if p.discipline}
            label = disciplines.pop() if len(disciplines) == 1 else "unknown discipline"
            per_discipline[label] += ctx.supported(code)
        for line in ctx.visit.other_lines:
            if line.code == code and day is not None and line.day == day:
                per_discipline[_line_discipline(ctx, line.modifiers)] += line.units
        for discipline, units in sorted(per_discipline.items()):
            if units > limit:
                yield Issue(
                    code=code,
                    message=f"{units} units of {code} on {day} for {discipline}; "
                    f"the per-day limit is {limit}",
                    fix=f"Check the minutes behind each {code} unit and document why more "
                    f"than {limit} units were needed, or correct the units",
                    evidence=tuple(line.ref for line in ctx.lines_of(code)),
                )
