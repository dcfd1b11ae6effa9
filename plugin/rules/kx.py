"""Rules on the Medicare per-beneficiary therapy thresholds (KX and targeted medical review)."""

from __future__ import annotations

from collections.abc import Iterator

from plugin.domain import BilledLine, Severity
from plugin.rules.base import Issue, money, rule
from plugin.rules.context import Context

GROUPS = (("PT+SLP", ("GP", "GN")), ("OT", ("GO",)))


def _group_of(line: BilledLine) -> str | None:
    for name, modifiers in GROUPS:
        if any(m in line.modifiers for m in modifiers):
            return name
    return None


def spend(ctx: Context) -> dict[str, tuple[float, float, list[BilledLine]]]:
    """Per threshold group: (spend this year before this visit, this visit's spend, its lines)."""
    day = ctx.visit.day
    result: dict[str, tuple[float, float, list[BilledLine]]] = {}
    if day is None:
        return result
    for name, _ in GROUPS:
        before = sum(
            line.amount or 0.0
            for line in ctx.visit.other_lines
            if _group_of(line) == name
            and line.day
            and line.day.year == day.year
            and line.day <= day
        )
        mine = [line for line in ctx.lines if _group_of(line) == name]
        if mine:
            result[name] = (before, sum(line.amount or 0.0 for line in mine), mine)
    return result


@rule(
    "missing-kx",
    Severity.ERROR,
    "SSA §1833(g)(7) (BBA 2018 §50202); CMS Claims Processing Manual ch.5 §10.3",
    billing=True,
)
def missing_kx(ctx: Context) -> Iterator[Issue]:
    """A Medicare visit passes the year's KX threshold and a line lacks KX.

    PT and SLP share one running total per beneficiary per calendar year, OT has its own; once
    the year-to-date spend including this visit passes the threshold (policy data by year),
    every line needs KX to attest medical necessity, or it is denied.
    Source: SSA §1833(g)(7); CMS per-beneficiary threshold change requests.
    """
    if not ctx.visit.medicare or ctx.visit.year not in ctx.policy.kx_years:
        return
    year = ctx.policy.kx_years[ctx.visit.year]
    for name, (before, mine, lines) in spend(ctx).items():
        threshold = year.pt_slp if name == "PT+SLP" else year.ot
        if before + mine <= threshold:
            continue
        for line in lines:
            if ctx.policy.kx_modifier not in line.modifiers:
                yield Issue(
                    code=line.code,
                    message=f"{year.year} {name} spend {money(before)} before this visit + "
                    f"{money(mine)} this visit = {money(before + mine)} passes the "
                    f"{money(threshold)} KX threshold; {line.code} line lacks KX",
                    fix=f"Add KX to the {line.code} line once the record supports medical "
                    "necessity beyond the threshold",
                    evidence=(line.ref,),
                    dollars_at_risk=line.amount or 0.0,
                )


@rule(
    "targeted-review-threshold",
    Severity.WARNING,
    "SSA §1833(g)(7)(B) (BBA 2018 §50202): $3,000 targeted medical review",
    billing=True,
)
def targeted_review_threshold(ctx: Context) -> Iterator[Issue]:
    """A Medicare patient's year-to-date therapy spend passes the targeted medical review amount.

    Above $3,000 (PT+SLP, or OT) a claim may be picked for targeted medical review: the record
    must stand on its own. Not a denial, a warning.
    Source: SSA §1833(g)(7)(B), added by the Bipartisan Budget Act of 2018 §50202.
    """
    if not ctx.visit.medicare:
        return
    threshold = ctx.policy.review_threshold
    for name, (before, mine, lines) in spend(ctx).items():
        if before <= threshold < before + mine:
            yield Issue(
                code=None,
                message=f"{name} spend reaches {money(before + mine)} with this visit, past the "
                f"{money(threshold)} targeted medical review threshold",
                fix="Make sure the plan of care, progress reports and this note show medical "
                "necessity; expect a possible records request",
                evidence=tuple(line.ref for line in lines),
            )
