"""Rule anatomy: a stable id, a severity, a citation and a pure check over the review context."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from plugin.domain import BilledLine, Finding, Severity

# What a finding makes unpayable, per billed line: ((line ref, dollars), ...).
AtRisk = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """What a check found; the engine adds the rule's id, severity and citation."""

    code: str | None
    message: str
    fix: str
    evidence: tuple[str, ...] = ()
    dollars_at_risk: float = 0.0  # when no per-line amounts are given (batch rules)
    at_risk: AtRisk = ()


def whole_lines(lines: Iterable[BilledLine]) -> AtRisk:
    """A finding that denies these lines puts each whole line at risk."""
    return tuple((line.ref, line.amount or 0.0) for line in lines)


def excess_units(lines: Iterable[BilledLine], units: int) -> AtRisk:
    """``units`` too many across the lines of one code: the last lines' units go first, each
    at its own unit price."""
    found = []
    for line in reversed(list(lines)):
        if units <= 0:
            break
        taken = min(units, line.units)
        units -= taken
        found.append((line.ref, taken * (line.unit_price or 0.0)))
    return tuple(reversed(found))


@dataclass(frozen=True, slots=True)
class Rule:
    """One registered rule; ``billing`` rules compare billed lines, silent before charges.

    ``needs``: the FHIR types whose absence would make the rule fire (a note not read looks
    unsigned). When one of them could not be read, the rule's findings would rest on what was
    not read: the engine drops them and reading-incomplete names the check instead (§2).
    """

    id: str
    severity: Severity
    citation: str
    check: Callable[..., Iterable[Issue]]
    billing: bool = False
    needs: frozenset[str] = frozenset()

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
        dollars_at_risk=issue.dollars_at_risk or sum(amount for _, amount in issue.at_risk),
        at_risk=issue.at_risk,
    )


def rule(
    rule_id: str,
    severity: Severity,
    citation: str,
    billing: bool = False,
    needs: Iterable[str] = (),
) -> Callable[[Callable[..., Iterable[Issue]]], Rule]:
    """Declare a check function as a Rule (registration stays explicit in ``ALL_RULES``)."""

    def wrap(check: Callable[..., Iterable[Issue]]) -> Rule:
        return Rule(rule_id, severity, citation, check, billing, frozenset(needs))

    return wrap


# What the rules that read the visit note need: its DocumentReference, and the note's text
# where it is kept in a Binary.
NOTE = ("DocumentReference", "Binary")


def money(amount: float) -> str:
    return f"${amount:,.2f}"


def hhmm(moment) -> str:
    return moment.strftime("%H:%M") if moment else "?"
