"""Plain words for the pages: finding titles, "1 unit" grammar, what to bill before charges,
and findings that share one cause shown together (presentation only: the JSON and the Task keep
every rule's finding)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TITLES = {
    "units-exceed-time": "More units billed than the minutes support",
    "units-under-billed": "The minutes support more units than were billed",
    "under-8-minutes": "Fewer than 8 minutes: too short for a unit",
    "missing-minutes": "No minutes documented for this code",
    "daily-unit-cap": "More units on this day than the daily limit",
    "minutes-overlap": "Two services claim the same minutes",
    "group-overlap": "One-on-one time overlaps group therapy",
    "untimed-overlap": "Timed minutes overlap an evaluation",
    "total-time-mismatch": "Minutes add up to more than the total treatment time",
    "missing-discipline-modifier": "GP, GO or GN modifier missing",
    "discipline-modifier-mismatch": "GP/GO/GN does not match who treated",
    "missing-assistant-modifier": "Assistant's minutes need CQ or CO",
    "missing-distinct-modifier": "These codes together need 59 or an X modifier",
    "unsupported-distinct-modifier": "59/X modifier used but the services were not separate",
    "missing-kx": "KX modifier needed: the yearly threshold is passed",
    "doc-no-deficit": "No specific deficit named",
    "doc-no-skilled-intervention": "No skilled technique or cueing described",
    "doc-no-patient-response": "Patient response not recorded",
    "doc-no-functional-goal": "No measurable functional goal",
    "doc-no-objective-measure": "No objective measure recorded",
    "doc-no-progress": "No earlier measure to show progress",
    "doc-unsigned": "Visit note not signed",
    "doc-no-total-time": "Total treatment time not documented",
    "supervision-only": "Reads as activity that needs no therapist",
    "code-selection": "The narrative reads like another code",
    "cloned-note": "Note repeats an earlier visit almost word for word",
    "untimed-units-exceed": "Too many units of an untimed code",
    "code-not-covered": "The payer does not pay this code",
    "unqualified-performer": "Minutes furnished by someone who cannot bill them",
    "poc-not-certified": "Plan of care not certified for this date",
    "progress-report-overdue": "Progress report overdue",
    "poc-certified-late": "Plan of care certified late",
    "episode-unknown": "Plan of care or earlier visits could not be read",
    "reading-incomplete": "Part of the chart could not be read: these checks were skipped",
    "kx-threshold-unknown": "No KX threshold for this year in the policy data",
    "ptp-not-bypassable": "These codes are never paid together, whatever the modifier",
    "eval-by-assistant": "Evaluation furnished by an assistant",
    "wrong-discipline-code": "Code billed under the other discipline",
    "untimed-undocumented": "Untimed code billed with nothing documented for it",
    "reevaluation-not-indicated": "Re-evaluation without a documented reason",
    "kx-not-indicated": "KX used before the yearly threshold is reached",
    "targeted-review-threshold": "Past the yearly amount for targeted medical review",
}

# A cause and the findings it brings about for the same code: shown as one problem.
CONSEQUENCES = {
    "missing-minutes": ("units-exceed-time",),
    "under-8-minutes": ("units-exceed-time",),
    "unqualified-performer": ("units-exceed-time",),
}


def title(rule: str) -> str:
    """The plain-language title of a rule id (the id itself when it has none)."""
    return TITLES.get(rule, rule.replace("-", " ").capitalize())


def units(n: int) -> str:
    """ "1 unit", "2 units", "0 units"."""
    return f"{n} unit" if n == 1 else f"{n} units"


def _and(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def billing_advice(services: Iterable, billed: bool) -> str | None:
    """What to bill, from each service's suggested units (before charges), or what to change
    (after): "Bill 2 units of 97112 and 1 unit of 97110"; a code whose minutes support no unit
    is "remove the line", never "Bill 0 units". None when there is nothing to say."""
    services = list(services)
    if not services:
        return None
    if not billed:
        keep = [f"{units(s.suggested_units)} of {s.code}" for s in services if s.suggested_units]
        drop = [s.code for s in services if not s.suggested_units]
        parts = []
        if keep:
            parts.append(f"Bill {_and(keep)}")
        if drop:
            lines = "line" if len(drop) == 1 else "lines"
            verb = "remove the" if keep else "Remove the"
            parts.append(f"{verb} {_and(drop)} {lines}: the minutes support no unit")
        return "; ".join(parts) + "."
    changes = []
    for s in services:
        if s.billed_units > s.supported_units:
            if s.supported_units == 0:
                changes.append(f"remove the {s.code} line")
            else:
                changes.append(f"bill {units(s.supported_units)} of {s.code}, not {s.billed_units}")
    if not changes:
        return None
    text = _and(changes)
    return text[0].upper() + text[1:] + "."


@dataclass
class Problem:
    """One problem as shown: a finding and the findings it brings about."""

    main: object
    follows: list = field(default_factory=list)


def grouped(findings: Sequence) -> list[Problem]:
    """Findings in order, each consequence (same code, same cause) placed under its cause."""
    cause_of: dict[int, int] = {}
    for i, f in enumerate(findings):
        for j, other in enumerate(findings):
            if (
                j != i
                and j not in cause_of
                and i not in cause_of
                and other.rule in CONSEQUENCES.get(f.rule, ())
                and other.code == f.code
            ):
                cause_of[j] = i
    return [
        Problem(f, [findings[j] for j in sorted(cause_of) if cause_of[j] == i])
        for i, f in enumerate(findings)
        if i not in cause_of
    ]


def quote_parts(quote) -> list[tuple[str, bool]]:
    """A quote's text cut at its marked spans (``marks``: [start, end] pairs of the words that
    matched): (text, marked) pieces in order, for the pages' <mark>."""
    if not isinstance(quote, dict):  # a domain Quote (the review page), not its JSON
        quote = quote.to_dict()
    text = str(quote.get("text") or "")
    parts, at = [], 0
    for span in sorted(quote.get("marks") or []):
        try:
            start, end = max(int(span[0]), at), min(int(span[1]), len(text))
        except (TypeError, ValueError, IndexError):
            continue
        if start >= end:
            continue
        if start > at:
            parts.append((text[at:start], False))
        parts.append((text[start:end], True))
        at = end
    if at < len(text):
        parts.append((text[at:], False))
    return parts
