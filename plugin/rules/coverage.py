"""Rules on what can be paid at all: untimed units, codes a payer does not pay, and minutes
furnished by someone who is not a qualified professional."""

from __future__ import annotations

from collections.abc import Iterator

from plugin.domain import Severity
from plugin.rules.base import Issue, excess_units, rule, whole_lines
from plugin.rules.context import Context


@rule(
    "untimed-units-exceed",
    Severity.ERROR,
    "CMS Claims Processing Manual ch.5 §20.2 (untimed codes: 1 unit)",
    billing=True,
)
def untimed_units_exceed(ctx: Context) -> Iterator[Issue]:
    """An untimed code is billed with more units on one date than the policy allows.

    Evaluations, group therapy (97150), supervised modalities and unattended e-stim (G0283)
    are service-based: one unit per date of service whatever the time spent, counting the
    units the day's other visits billed. The limit per code is policy data.
    Source: CMS Claims Processing Manual ch.5 §20.2 (only timed codes are counted in 15-minute
    units); AMA CPT descriptors of the untimed codes (no 'each 15 minutes').
    """
    for code, billed in sorted(ctx.billed_units.items()):
        if code in ctx.policy.timed or code not in ctx.policy.untimed or billed <= 0:
            continue
        limit = ctx.policy.untimed_unit_exceptions.get(code, ctx.policy.untimed_units_per_day)
        already = ctx.other_billed.get(code, 0)
        if billed + already <= limit:
            continue
        day = f" ({already} already billed at another visit that day)" if already else ""
        excess = billed + already - limit
        yield Issue(
            code=code,
            message=f"{code} is untimed: {billed} unit(s) billed{day}, at most {limit} per date",
            fix=f"Bill {code} once per date of service ({max(limit - already, 0)} unit here)",
            evidence=tuple(line.ref for line in ctx.lines_of(code)),
            at_risk=excess_units(ctx.lines_of(code), min(excess, billed)),
        )


@rule(
    "code-not-covered",
    Severity.ERROR,
    "CMS Medicare Physician Fee Schedule status indicators; payer code lists in policy data",
    billing=True,
)
def code_not_covered(ctx: Context) -> Iterator[Issue]:
    """The payer does not pay the code as billed.

    Some codes are valid CPT but not payable by a payer: Medicare does not pay 97014
    (unattended electrical stimulation) and pays G0283 for it, and never pays separately a code
    whose fee schedule status is B (bundled, e.g. 97010 hot or cold packs), I or N. The payer
    code lists, with the code each payer pays instead, and the MPFS status codes are policy data.
    Source: CMS Medicare Physician Fee Schedule relative value file, status codes (Attachment A
    of its readme: B "Payment for covered services are always bundled"); billing-rules.md
    'Additions'.
    """
    payer = (ctx.visit.payer or "").lower()
    for entry in ctx.policy.not_covered_on(ctx.visit.day):
        applies = ctx.visit.medicare if entry.payer == "medicare" else entry.payer in payer
        if not applies:
            continue
        for line in ctx.lines_of(entry.code):
            yield Issue(
                code=entry.code,
                message=f"{entry.code} billed to {ctx.visit.payer or entry.payer}: {entry.why}",
                fix=f"Bill {entry.instead} instead of {entry.code}"
                if entry.instead
                else f"Remove the {entry.code} line: {ctx.visit.payer or entry.payer} does not "
                "pay it separately",
                evidence=(line.ref,),
                at_risk=whole_lines([line]),
            )


@rule(
    "unqualified-performer",
    Severity.ERROR,
    "CMS Benefit Policy Manual ch.15 §230.1 and §220.3 E",
    billing=True,
)
def unqualified_performer(ctx: Context) -> Iterator[Issue]:
    """The minutes were furnished by someone who may not furnish therapy.

    Services of an aide, a technician or a student with no therapist on the service are not
    therapy services and support no units: 'Services provided by aides, even if under the
    supervision of a therapist, are not therapy services and are not covered by Medicare.'
    Source: CMS Benefit Policy Manual ch.15 §230.1 (aides) and §230.1 B (students: the
    therapist must be present and directing the service).
    """
    for code, services in sorted(ctx.services_by_code.items()):
        unqualified = [s for s in services if s.unqualified_only]
        if not unqualified or not ctx.lines_of(code):
            continue
        roles = sorted({p.discipline or "" for s in unqualified for p in s.furnishing})
        minutes = int(sum(s.seconds or 0.0 for s in unqualified) // 60)
        qualified = any(not s.unqualified_only for s in services)
        yield Issue(
            code=code,
            message=f"{minutes} minutes of {code} were furnished by {', '.join(roles).lower()} "
            f"only; they support no units",
            fix=f"Bill only the minutes a therapist or assistant furnished for {code}"
            if qualified
            else f"Remove the {code} line, or document the therapist who furnished it",
            evidence=tuple(s.ref for s in unqualified),
            at_risk=whole_lines(ctx.lines_of(code)) if not qualified else (),
        )
