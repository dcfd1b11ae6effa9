"""Run the rules over one visit and gather a Report (pure: no I/O, deterministic order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from plugin.domain import Finding, Severity, Visit
from plugin.narrative import PhraseMatcher
from plugin.policy.model import Policy
from plugin.rules.base import Rule, finding
from plugin.rules.context import Context


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    code: str
    minutes: int | None
    billed_units: int
    supported_units: int
    modifiers: tuple[str, ...]
    timed: bool


@dataclass(frozen=True, slots=True)
class Report:
    visit: Visit
    method: str
    total_timed_minutes: int
    total_timed_units: int
    services: tuple[ServiceSummary, ...]
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> str:
        severities = {f.severity for f in self.findings}
        if Severity.ERROR in severities:
            return "unsupported"
        if Severity.WARNING in severities:
            return "needs-review"
        return "supported"

    @property
    def dollars_at_risk(self) -> float:
        return sum(f.dollars_at_risk for f in self.findings)


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
        rows.append(
            ServiceSummary(
                code=code,
                minutes=sum(known) if known else None,
                billed_units=ctx.billed_units.get(code, 0),
                supported_units=ctx.supported(code),
                modifiers=tuple(modifiers),
                timed=code in ctx.policy.timed,
            )
        )
    return tuple(rows)


def review(visit: Visit, policy: Policy, rules: Sequence[Rule] | None = None) -> Report:
    """Apply every rule to the visit; findings come worst first, then in registry order."""
    if rules is None:
        from plugin.rules import ALL_RULES

        rules = ALL_RULES
    ctx = Context(visit, policy, matcher_for(policy))
    findings = []
    for order, rule in enumerate(rules):
        if rule.billing and not ctx.has_billing:
            continue
        for issue in rule.check(ctx):
            findings.append((rule.severity.rank, order, finding(rule, issue)))
    findings.sort(key=lambda item: (item[0], item[1]))
    return Report(
        visit=visit,
        method=visit.method,
        total_timed_minutes=ctx.allocation.total_minutes,
        total_timed_units=ctx.allocation.total_units,
        services=_services(ctx),
        findings=tuple(f for _, _, f in findings),
    )
