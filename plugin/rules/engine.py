"""Run the rules over one visit and gather a Report (pure: no I/O, deterministic order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from plugin.domain import Finding, Severity, Visit
from plugin.narrative import MAX_CHARS, MAX_REVIEW_CHARS, MAX_WORDS, PhraseMatcher
from plugin.policy.model import Policy
from plugin.rules.base import Rule, finding
from plugin.rules.context import Context


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    code: str
    minutes: int | None  # None where only a total timed minutes is documented
    billed_units: int
    supported_units: int
    modifiers: tuple[str, ...]
    timed: bool
    suggested_units: int = 0  # what to bill under the method (useful before charges)


@dataclass(frozen=True, slots=True)
class DaySummary:
    """The day's pooled figures when other visits share the date of service (§2b)."""

    encounters: tuple[str, ...]
    total_timed_minutes: int
    total_timed_units: int
    billed_units: dict[str, int]


@dataclass(frozen=True, slots=True)
class Report:
    visit: Visit
    method: str
    total_timed_minutes: int
    total_timed_units: int
    services: tuple[ServiceSummary, ...]
    findings: tuple[Finding, ...]
    day: DaySummary | None = None
    # rules not decided because what they need could not be read (reading-incomplete names them)
    unchecked: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        severities = {f.severity for f in self.findings}
        if Severity.ERROR in severities:
            return "unsupported"
        if Severity.WARNING in severities or self.visit.unreadable:
            return "needs-review"  # a billed line that could not be read is never "supported"
        return "supported"

    @property
    def billed_total(self) -> float:
        return sum(line.amount or 0.0 for line in self.visit.billed or ())

    @property
    def dollars_at_risk(self) -> float:
        """Per billed line the largest amount any finding puts at risk, added up: a line is
        never counted twice and the visit never risks more than was billed (contract §2b)."""
        per_line: dict[str, float] = {}
        loose = 0.0
        for f in self.findings:
            if not f.at_risk:
                loose += f.dollars_at_risk
            for ref, amount in f.at_risk:
                per_line[ref] = max(per_line.get(ref, 0.0), amount)
        return min(sum(per_line.values()) + loose, self.billed_total)


_MATCHERS: dict[int, PhraseMatcher] = {}


def matcher_for(policy: Policy) -> PhraseMatcher:
    """One compiled PhraseMatcher per Policy object (policies are immutable)."""
    found = _MATCHERS.get(id(policy))
    if found is None:
        found = _MATCHERS[id(policy)] = PhraseMatcher(policy)
    return found


def _services(ctx: Context) -> tuple[ServiceSummary, ...]:
    codes = sorted(set(ctx.services_by_code) | set(ctx.billed_units))
    rows = []
    for code in codes:
        services = ctx.services_by_code.get(code, [])
        known = [s.minutes for s in services if s.minutes is not None]
        modifiers = sorted({m for line in ctx.lines_of(code) for m in line.modifiers})
        timed = code in ctx.policy.timed
        minutes = ctx.timed_minutes.get(code) if timed else (sum(known) if known else None)
        rows.append(
            ServiceSummary(
                code=code,
                minutes=None if timed and ctx.total_only else minutes,
                billed_units=ctx.billed_units.get(code, 0),
                supported_units=ctx.supported(code),
                modifiers=tuple(modifiers),
                timed=timed,
                suggested_units=ctx.suggested(code),
            )
        )
    return tuple(rows)


def _day(ctx: Context) -> DaySummary | None:
    if not ctx.visit.same_day:
        return None
    billed = dict(ctx.billed_units)
    for code, units in ctx.other_billed.items():
        billed[code] = billed.get(code, 0) + units
    return DaySummary(
        encounters=(ctx.visit.encounter, *(v.encounter for v in ctx.visit.same_day)),
        total_timed_minutes=ctx.allocation.total_minutes,
        total_timed_units=ctx.allocation.total_units,
        billed_units=dict(sorted(billed.items())),
    )


_PLANS: dict[bool, tuple[tuple[int, int, Rule], ...]] = {}  # the registry's, by has_billing


def _plan(rules: Sequence[Rule] | None, has_billing: bool) -> tuple[tuple[int, int, Rule], ...]:
    """The rules that apply (the registry when ``rules`` is None), each with its severity rank
    and registry order (the sort key of its findings); the registry's once per process."""
    if rules is None:
        found = _PLANS.get(has_billing)
        if found is None:
            from plugin.rules import ALL_RULES

            found = _PLANS[has_billing] = _plan(ALL_RULES, has_billing)
        return found
    return tuple(
        (rule.severity.rank, order, rule)
        for order, rule in enumerate(rules)
        if has_billing or not rule.billing
    )


def _where(visit: Visit, text: str) -> str:
    """Which note of the visit (or of an earlier one) a text is, for a reading note."""
    if text == visit.note_text:
        return f"{visit.encounter}: its visit note"
    for service in visit.services:
        if text == service.note:
            return f"{service.ref}: its note"
        if text in service.reasons:
            return f"{service.ref}: its reason"
    for earlier in visit.earlier_visits:
        if text in earlier.texts:
            return f"{earlier.encounter}: a note of this earlier visit"
    return f"{visit.encounter}: a note"


def _with_cut_notes(visit: Visit, cut: dict[str, bool]) -> Visit:
    """The visit with a reading note for each text the rules read only in part, or not at all."""
    limits = (
        f"a note is read up to {MAX_WORDS:,} words or {MAX_CHARS:,} characters, a review up to "
        f"{MAX_REVIEW_CHARS:,} characters of notes"
    )
    said = tuple(
        f"{_where(visit, text)} was "
        f"{'checked only in its beginning' if partly else 'not checked'} ({limits})"
        for text, partly in cut.items()
    )
    return replace(visit, notes=visit.notes + said)


def review(
    visit: Visit, policy: Policy, rules: Sequence[Rule] | None = None, quotes: bool = False
) -> Report:
    """Apply every rule to the visit; findings come worst first, then in registry order. With
    ``quotes`` each finding carries what it read in words (``plugin.rules.quotes``).

    A rule that would fire while something it needs could not be read (``Rule.needs``, the
    visit's ``unread``) gives no finding: the rule is kept in ``Context.unchecked``, which
    reading-incomplete, registered last, names (contract §2, "Unread is not absent").
    """
    ctx = Context(visit, policy, matcher_for(policy))
    unread = {u.resource for u in visit.unread} if visit.unread else None
    findings = []
    for rank, order, rule in _plan(rules, ctx.has_billing):
        issues = rule.check(ctx)
        if unread and rule.needs & unread:
            issues = list(issues)
            if issues:
                ctx.unchecked.append(rule)
                continue
        for issue in issues:
            findings.append((rank, order, finding(rule, issue)))
    if len(findings) > 1:
        findings.sort(key=lambda item: (item[0], item[1]))
    if quotes and findings:
        from plugin.rules.quotes import quotes_for

        findings = [(r, o, replace(f, quotes=quotes_for(ctx, f))) for r, o, f in findings]
    own_minutes = (
        visit.stated_timed_minutes if ctx.total_only else sum(ctx.timed_minutes.values())
    ) or 0
    if ctx.cut:  # a note too long to read whole: the review says what it left unread
        visit = _with_cut_notes(visit, ctx.cut)
    return Report(
        visit=visit,
        method=visit.method,
        total_timed_minutes=own_minutes,
        total_timed_units=ctx.own_units,
        services=_services(ctx),
        findings=tuple(f for _, _, f in findings),
        day=_day(ctx),
        unchecked=tuple(r.id for r in ctx.unchecked),
    )
