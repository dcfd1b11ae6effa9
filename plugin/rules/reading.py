"""What the review could not read, said once (contract §2, "Unread is not absent"; §3).

The engine drops the findings of a rule that would fire while something it needs could not be
read (``Rule.needs``); this rule, registered last, names those checks, and the checks that could
not run at all: the payer's rules when the payer is unknown, the billed lines' when no charge
could be read, who furnished a service when the practitioner could not be read. The plan of care
and the episode's earlier visits have their own warning (episode-unknown).
"""

from __future__ import annotations

from collections.abc import Iterator

from plugin.domain import Severity, Unread
from plugin.rules.base import Issue, rule
from plugin.rules.context import Context

# How a thing not read is named in the warning.
WHAT = {
    "Observation": "Observations",
    "Goal": "Goals",
    "Condition": "Conditions",
    "DocumentReference": "Visit notes (DocumentReference)",
    "Binary": "The visit note's text",
    "Procedure": "Procedures",
    "Coverage": "The payer (Coverage)",
    "ChargeItem": "Charges (ChargeItem)",
    "Claim": "Claims",
    "Practitioner": "The practitioner",
    "PractitionerRole": "The practitioner's role",
}

# The check each rule makes, as the warning names it when it is skipped.
CHECKS = {
    "doc-no-objective-measure": "objective measures",
    "doc-no-progress": "progress against an earlier measure",
    "doc-no-functional-goal": "a measurable functional goal",
    "doc-no-deficit": "the deficit named",
    "doc-no-skilled-intervention": "the skilled intervention",
    "doc-no-patient-response": "the patient's response",
    "doc-unsigned": "the note's signature",
    "doc-no-total-time": "the total times",
    "missing-minutes": "each code's minutes",
    "units-exceed-time": "units against minutes",
    "progress-report-overdue": "progress-report timing",
    "poc-not-certified": "plan-of-care certification",
}

# Checks that cannot run at all without what was not read (they stay silent rather than fire).
PAYER = (
    "the payer's rules (for Medicare: plan-of-care certification, progress reports, the KX "
    "threshold, codes it does not pay)"
)
BILLED = "the billed lines (units, modifiers, the KX threshold)"
SPEND = "the year's therapy spend (the KX threshold)"
PERFORMER = "who furnished the service (discipline and assistant modifiers)"


def _what(item: Unread) -> str:
    what = WHAT.get(item.resource, item.resource)
    if item.part and item.resource in ("Practitioner", "PractitionerRole"):
        return item.part
    return f"{what} ({item.part})" if item.part else what


def _cannot_run(ctx: Context, item: Unread) -> list[str]:
    if item.resource == "Coverage":
        return [PAYER]
    if item.resource in ("ChargeItem", "Claim"):
        return [BILLED if ctx.visit.billed is None else SPEND]
    if item.resource in ("Practitioner", "PractitionerRole"):
        return [PERFORMER]
    return []


@rule(
    "reading-incomplete",
    Severity.WARNING,
    "HL7 FHIR R4 RESTful API: a server refuses a search it does not support (http.html#search); "
    "each skipped check keeps its own source",
)
def reading_incomplete(ctx: Context) -> Iterator[Issue]:
    """Something a rule needs could not be read, so the checks that rest on it were skipped.

    A search the EHR refused, a type it does not serve by patient, a note's text it would not
    give, a payer named but not in the record: what is not read is not absent. No rule decides
    from it; this warning names what could not be read and which checks were skipped, e.g.
    'Observations could not be read from Epic: objective measures not checked'. It must stay
    the last rule registered: it names the checks the engine skipped before it.
    Source: contract §2 "Unread is not absent"; HL7 FHIR R4 http.html#search.
    """
    said = []
    for item in ctx.visit.unread:
        checks = [
            CHECKS.get(r.id, r.id) for r in ctx.unchecked if item.resource in r.needs
        ] + _cannot_run(ctx, item)
        if not checks:
            continue  # nothing rested on it (a measure was read all the same)
        where = f" from {item.ehr}" if item.ehr else ""
        said.append(f"{_what(item)} could not be read{where}: {_and(checks)} not checked")
    if not said:
        return
    yield Issue(
        code=None,
        message=". ".join(dict.fromkeys(said)),
        fix="Check these in the chart before the claim leaves; if the EHR should allow them, "
        "ask its administrator (the reading notes give the EHR's answer)",
        evidence=(ctx.visit.encounter,),
    )


def _and(parts: list[str]) -> str:
    parts = list(dict.fromkeys(parts))
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
