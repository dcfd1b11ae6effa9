"""Rules on the Medicare per-beneficiary therapy thresholds (KX and targeted medical review).

The running total is the beneficiary's incurred expenses: allowed amounts (the payer's, else the
fee schedule's), not the clinic's charges (contract.md section 2, "year-to-date therapy spend").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from plugin.domain import BilledLine, ReportedYtd, Severity, SpendLine
from plugin.rules.base import Issue, money, rule
from plugin.rules.context import Context

GROUPS = (("PT+SLP", ("GP", "GN")), ("OT", ("GO",)))


def _group_of(modifiers: frozenset[str]) -> str | None:
    for name, group_modifiers in GROUPS:
        if not modifiers.isdisjoint(group_modifiers):
            return name
    return None


@dataclass(frozen=True, slots=True)
class GroupSpend:
    """One threshold group's allowed amounts: before this visit, this visit's, and from where."""

    before: float
    mine: float
    lines: list[BilledLine]  # this visit's billed lines of the group
    reported: ReportedYtd | None  # the payer's year-to-date the total starts from
    before_lines: list[SpendLine]
    mine_lines: list[SpendLine]

    @property
    def total(self) -> float:
        return self.before + self.mine

    def explain(self) -> str:
        """Where the amounts come from, e.g. "payer-reported $2,000.00 to 2026-02-01
        (CoverageEligibilityResponse/x) + 3 earlier lines (MPFS 2026 national 3)"."""
        parts = []
        if self.reported:
            parts.append(
                f"payer-reported {money(self.reported.amount)} to "
                f"{self.reported.as_of.isoformat()} ({self.reported.source})"
            )
        if self.before_lines or not parts:
            count = len(self.before_lines)
            lines = "earlier line" if count == 1 else "earlier lines"
            parts.append(f"{count} {lines}{_sources(self.before_lines)}")
        return (
            f"before this visit {money(self.before)} = {' + '.join(parts)}; this visit "
            f"{money(self.mine)}{_sources(self.mine_lines)}"
        )


def _sources(lines: list[SpendLine]) -> str:
    if not lines:
        return ""
    counts = Counter(line.source.split(" (")[0] for line in lines)
    return " (" + ", ".join(f"{source} {n}" for source, n in sorted(counts.items())) + ")"


def _charge_line(line: BilledLine) -> SpendLine:
    return SpendLine(line.ref, line.code, line.day, line.modifiers, line.amount or 0.0, "charge")


def spend(ctx: Context) -> dict[str, GroupSpend]:
    """``_spend`` once per review (both KX rules read it)."""
    found = ctx.memo.get("kx-spend")
    if found is None:
        found = ctx.memo["kx-spend"] = _spend(ctx)
    return found


def _spend(ctx: Context) -> dict[str, GroupSpend]:
    """Per threshold group with lines in this visit: the allowed amounts before it and in it.

    Before = the payer-reported year-to-date (the latest one dated this year before the visit)
    plus the allowed amounts of this year's other lines up to the visit's date and after the
    reported date.
    """
    day = ctx.visit.day
    result: dict[str, GroupSpend] = {}
    if day is None:
        return result
    visit_spend = ctx.visit.spend
    mine_refs = {line.ref for line in ctx.lines}
    if visit_spend is None:  # a Visit not built from FHIR: the charges are all there is
        by_ref = {line.ref: _charge_line(line) for line in ctx.lines}
        others = [_charge_line(line) for line in ctx.visit.other_lines]
        reported: tuple[ReportedYtd, ...] = ()
    else:
        by_ref = {line.ref: line for line in visit_spend.lines}
        others = [line for line in visit_spend.lines if line.ref not in mine_refs]
        reported = visit_spend.reported
    mine_by_group: dict[str, list[BilledLine]] = {}
    for line in ctx.lines:
        group = _group_of(line.modifiers)
        if group is not None:
            mine_by_group.setdefault(group, []).append(line)
    if not mine_by_group:
        return result
    # This year's other lines up to the visit's date, by group (read once for both groups).
    others_by_group: dict[str, list[SpendLine]] = {}
    for line in others:
        if line.day and line.day.year == day.year and line.day <= day:
            group = _group_of(line.group_modifiers)
            if group is not None:
                others_by_group.setdefault(group, []).append(line)
    for name, _ in GROUPS:
        mine = mine_by_group.get(name)
        if not mine:
            continue
        start = (
            max(
                (
                    r
                    for r in reported
                    if r.group == name and r.as_of.year == day.year and r.as_of < day
                ),
                key=lambda r: r.as_of,
                default=None,
            )
            if reported
            else None
        )
        before_lines = others_by_group.get(name, [])
        if start is not None:
            before_lines = [line for line in before_lines if line.day > start.as_of]
        mine_lines = [by_ref.get(line.ref) or _charge_line(line) for line in mine]
        result[name] = GroupSpend(
            before=(start.amount if start else 0.0) + sum(line.allowed for line in before_lines),
            mine=sum(line.allowed for line in mine_lines),
            lines=mine,
            reported=start,
            before_lines=before_lines,
            mine_lines=mine_lines,
        )
    return result


def _fee_for_service(ctx: Context) -> bool:
    """Medicare fee-for-service: Medicare, and not a Medicare Advantage plan."""
    spent = ctx.visit.spend
    return ctx.visit.medicare and not (spent and spent.medicare_advantage)


def _threshold_applies(ctx: Context) -> bool:
    """The KX threshold applies: Original Medicare, or a Medicare Advantage plan the payer table
    marks ``kx = true`` (contract §3, changed 2026-12-07)."""
    if _fee_for_service(ctx):
        return True
    return ctx.visit.medicare and ctx.policy.kx_for_advantage(ctx.visit.payer)


@rule(
    "missing-kx",
    Severity.ERROR,
    "SSA §1833(g)(7) (BBA 2018 §50202); CMS Claims Processing Manual ch.5 §10.3",
    billing=True,
)
def missing_kx(ctx: Context) -> Iterator[Issue]:
    """A Medicare visit passes the year's KX threshold and a line lacks KX.

    PT and SLP share one running total per beneficiary per calendar year, OT has its own. The
    total is the beneficiary's "incurred expenses" (SSA §1833(g); Noridian's KX modifier page):
    allowed amounts, the payer's where the Bundle carries them, else units x the fee schedule
    amount, never the clinic's charges. Once the year-to-date total including this visit passes
    the threshold (policy data by year), every line needs KX to attest medical necessity, or it
    is denied. Medicare Advantage plans are not fee-for-service and are checked only where the
    payer table says the plan applies the threshold (``kx = true``).
    Source: SSA §1833(g)(7); CMS per-beneficiary threshold change requests; contract.md §2.
    """
    if not _threshold_applies(ctx) or ctx.visit.year not in ctx.policy.kx_years:
        return
    year = ctx.policy.kx_years[ctx.visit.year]
    for name, spent in spend(ctx).items():
        threshold = year.pt_slp if name == "PT+SLP" else year.ot
        if spent.total <= threshold:
            continue
        for line in spent.lines:
            if ctx.policy.kx_modifier not in line.modifiers:
                yield Issue(
                    code=line.code,
                    message=f"{year.year} {name} allowed amounts reach {money(spent.total)} "
                    f"({spent.explain()}), past the {money(threshold)} KX threshold; "
                    f"{line.code} line lacks KX",
                    fix=f"Add KX to the {line.code} line once the record supports medical "
                    "necessity beyond the threshold",
                    evidence=(line.ref,),
                    dollars_at_risk=line.amount or 0.0,
                )


@rule(
    "kx-threshold-unknown",
    Severity.WARNING,
    "SSA §1833(g)(7)(A) (threshold updated yearly by CMS change request); contract.md §3",
    billing=True,
)
def kx_threshold_unknown(ctx: Context) -> Iterator[Issue]:
    """A Medicare therapy visit in a year for which the policy data has no KX threshold.

    The KX amount is set each calendar year (the old cap amount raised by the MEI, announced
    in a CMS change request), so a year missing from the policy data means missing-kx cannot
    run for this visit: it is reported rather than silently skipped.
    Source: SSA §1833(g)(7)(A) (BBA 2018 §50202); CMS "Annual Update of Per-Beneficiary
    Threshold Amounts" change requests; contract.md §3.
    """
    if not _threshold_applies(ctx):
        return
    if ctx.visit.year in ctx.policy.kx_years:
        return
    lines = [line for line in ctx.lines if _group_of(line.modifiers)]
    if not lines:
        return
    known = sorted(ctx.policy.kx_years)
    span = f"{known[0]}-{known[-1]}" if known else "none"
    when = f"{ctx.visit.year}" if ctx.visit.year else "an unknown year (no date of service)"
    yield Issue(
        code=None,
        message=f"No KX threshold for {when} in the policy data (kx.toml has {span}); "
        "missing-kx was not checked for this visit",
        fix="Add the year's per-beneficiary KX threshold to plugin/policy/data/kx.toml from the "
        "CMS change request, then review the visit again",
        evidence=tuple(line.ref for line in lines),
    )


@rule(
    "targeted-review-threshold",
    Severity.WARNING,
    "SSA §1833(g)(7)(B) (BBA 2018 §50202): $3,000 targeted medical review",
    billing=True,
)
def targeted_review_threshold(ctx: Context) -> Iterator[Issue]:
    """A Medicare patient's year-to-date therapy spend passes the targeted medical review amount.

    Above $3,000 of incurred expenses (allowed amounts, PT+SLP or OT) a claim may be picked for
    targeted medical review: the record must stand on its own. Not a denial, a warning.
    Medicare Advantage plans are not fee-for-service and are not checked.
    Source: SSA §1833(g)(7)(B), added by the Bipartisan Budget Act of 2018 §50202.
    """
    if not _fee_for_service(ctx):
        return
    threshold = ctx.policy.review_threshold
    for name, spent in spend(ctx).items():
        if spent.before <= threshold < spent.total:
            yield Issue(
                code=None,
                message=f"{name} allowed amounts reach {money(spent.total)} with this visit "
                f"({spent.explain()}), past the {money(threshold)} targeted medical review "
                "threshold",
                fix="Make sure the plan of care, progress reports and this note show medical "
                "necessity; expect a possible records request",
                evidence=tuple(line.ref for line in spent.lines),
            )


@rule(
    "kx-not-indicated",
    Severity.WARNING,
    "CMS Claims Processing Manual ch.5 §10.3.3 (KX attests necessity above the threshold)",
    billing=True,
    needs=("Claim", "ChargeItem"),  # earlier charges not read: the year's spend is unknown
)
def kx_not_indicated(ctx: Context) -> Iterator[Issue]:
    """KX is appended while the year-to-date allowed amount, this visit included, is under the
    year's threshold.

    KX attests that services above the per-beneficiary threshold are medically necessary and
    that the record documents it (Noridian's KX modifier page; ch.5 §10.3.3); below the
    threshold there is nothing to attest. A KX line under the threshold is not denied, but it
    says the patient is past the threshold when the running total (allowed amounts, as for
    missing-kx) says otherwise: a reviewer should look (a warning). The payer's own
    year-to-date may be higher than the Bundle shows (another provider's claims), so the
    message names where the amounts come from.
    Source: CMS Claims Processing Manual ch.5 §10.3.3; SSA §1833(g)(7); contract.md §2.
    """
    if not _threshold_applies(ctx) or ctx.visit.year not in ctx.policy.kx_years:
        return
    year = ctx.policy.kx_years[ctx.visit.year]
    for name, spent in spend(ctx).items():
        threshold = year.pt_slp if name == "PT+SLP" else year.ot
        if spent.total > threshold:
            continue
        marked = [line for line in spent.lines if ctx.policy.kx_modifier in line.modifiers]
        for line in marked:
            yield Issue(
                code=line.code,
                message=f"{line.code} line carries KX but {year.year} {name} allowed amounts "
                f"reach only {money(spent.total)} with this visit ({spent.explain()}), under "
                f"the {money(threshold)} KX threshold",
                fix="Remove KX until the year's allowed amounts pass the threshold, unless the "
                "payer reports a higher year-to-date than the record shows",
                evidence=(line.ref,),
            )
