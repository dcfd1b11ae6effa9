"""Rules on billed units against documented minutes (the 8-minute rule and its neighbours)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from plugin.domain import Severity
from plugin.rules.base import Issue, rule
from plugin.rules.context import Context

CH5 = "CMS Claims Processing Manual ch.5 §20.2"


def _pool_note(ctx: Context) -> str:
    if ctx.method != "cms":
        return f" (per code, {ctx.method} method)"
    alloc = ctx.allocation
    if len(ctx.timed_minutes) < 2:
        return ""
    units = "unit" if alloc.total_units == 1 else "units"
    return f" ({alloc.total_minutes} timed minutes in all support {alloc.total_units} {units})"


@rule("units-exceed-time", Severity.ERROR, CH5, billing=True)
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
        minutes = ctx.timed_minutes.get(code, 0)
        price = ctx.unit_price(code) or 0.0
        yield Issue(
            code=code,
            message=f"{billed} units of {code} billed; {minutes} documented minutes support "
            f"{supported}{_pool_note(ctx)}",
            fix=f"Bill {supported} unit{'s' if supported != 1 else ''} of {code} "
            "or document the missing minutes",
            evidence=tuple(line.ref for line in ctx.lines_of(code)),
            dollars_at_risk=(billed - supported) * price,
        )


@rule("units-under-billed", Severity.INFO, CH5, billing=True)
def units_under_billed(ctx: Context) -> Iterator[Issue]:
    """The documented minutes support more units of a timed code than were billed.

    Nothing is wrong with the claim; the clinic may be leaving money on the table.
    Source: CMS Claims Processing Manual ch.5 §20.2 C (units follow the documented minutes).
    """
    for code in sorted(ctx.allocation.units):
        supported, billed = ctx.supported(code), ctx.billed_units.get(code, 0)
        if supported > billed:
            yield Issue(
                code=code,
                message=f"{ctx.timed_minutes.get(code, 0)} documented minutes of {code} support "
                f"{supported} units; {billed} billed",
                fix=f"Consider billing {supported} units of {code} if the minutes are right",
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
        minutes = ctx.timed_minutes.get(code)
        if code not in ctx.policy.timed or billed == 0 or minutes is None or minutes == 0:
            continue
        if minutes < first and ctx.allocation.most.get(code, 0) == 0:
            yield Issue(
                code=code,
                message=f"{code} billed with {minutes} documented minutes; under {first} minutes "
                f"it earns no unit under the {ctx.method} method",
                fix=f"Remove the {code} line, or document at least {first} minutes",
                evidence=tuple(s.ref for s in ctx.services_by_code.get(code, [])),
            )


@rule("missing-minutes", Severity.ERROR, "CMS Benefit Policy Manual ch.15 §220.3 E", billing=True)
def missing_minutes(ctx: Context) -> Iterator[Issue]:
    """A timed code is billed but no minutes are documented for it.

    A timed code's units rest on documented minutes: a completed Procedure with that code and a
    performed period. Source: CMS Benefit Policy Manual ch.15 §220.3 E ('The billing and the
    total timed code treatment minutes must be consistent').
    """
    for code, billed in sorted(ctx.billed_units.items()):
        if code in ctx.policy.timed and billed > 0 and code not in ctx.timed_minutes:
            yield Issue(
                code=code,
                message=f"{billed} units of {code} billed with no documented minutes",
                fix=f"Document the {code} intervention with its start and end times, "
                "or remove the line",
                evidence=tuple(line.ref for line in ctx.lines_of(code)),
                dollars_at_risk=billed * (ctx.unit_price(code) or 0.0),
            )


def _line_discipline(ctx: Context, modifiers) -> str:
    for modifier, discipline in ctx.policy.discipline_modifiers.items():
        if modifier in modifiers:
            return discipline
    return "unknown discipline"


@rule(
    "daily-unit-cap", Severity.WARNING, "Per-day limit in policy data (seed guides; MUE unverified)"
)
def daily_unit_cap(ctx: Context) -> Iterator[Issue]:
    """Units of a capped code (97112) on one date for one discipline pass the per-day limit.

    Counts this visit's billed units (or, before charges, the units the minutes support) and the
    patient's other billed lines of the same date. The limit is policy data.
    Source: the seed guides cite 4 units of 97112 per date per discipline (the CMS practitioner
    MUE for 97112 is unverified; billing-rules.md §3), so this is a warning, not a denial.
    """
    day = ctx.visit.day
    for code, limit in sorted(ctx.policy.per_day_units.items()):
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
