"""Rule anatomy: a stable id, a severity, a citation and a pure check over the review context."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from plugin.domain import Finding, Severity


@dataclass(frozen=True, slots=True)
class Issue:
    """What a check found; the engine adds the rule's id, severity and citation."""

    code: str | None
    message: str
    fix: str
    evidence: tuple[str, ...] = ()
    dollars_at_risk: float = 0.0


@dataclass(frozen=True, slots=True)
class Rule:
    """One registered rule; ``billing`` rules compare billed lines, silent before charges."""

    id: str
    severity: Severity
    citation: str
    check: Callable[..., Iterable[Issue]]
    billing: bool = False

    @property
    def doc(self) -> str:
        return (self.check.__doc__ or "").strip()

    @property
    def title(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""


def finding(found_by: Rule, issue: Issue) -> Finding:
    """The Finding a rule's Issue becomes: the issue plus the rule's id, severity, citation."""
    return Finding(
        rule=found_by.id,
        severity=found_by.severity,
        code=issue.code,
        message=issue.message,
        fix=issue.fix,
        citation=found_by.citation,
        evidence=issue.evidence,
        dollars_at_risk=issue.dollars_at_risk,
    )


def rule(
    rule_id: str, severity: Severity, citation: str, billing: bool = False
) -> Callable[[Callable[..., Iterable[Issue]]], Rule]:
    """Declare a check function as a Rule (registration stays explicit in ``ALL_RULES``)."""

    def wrap(check: Callable[..., Iterable[Issue]]) -> Rule:
        return Rule(rule_id, severity, citation, check, billing)

    return wrap


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def hhmm(moment) -> str:
    return moment.strftime("%H:%M") if moment else "?"
