"""Rules that only a batch can see: they compare services across patients.

A visit review sees one patient. The audit also collects, for every visit, the treatment slots
(who treated whom, with which code, from when to when) and hands them to these rules grouped by
therapist. Like every rule, they are pure functions over plain data, standard library only.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from plugin.domain import Finding, Severity, Visit
from plugin.policy.model import Policy
from plugin.rules.base import Issue, Rule, finding, hhmm, money, rule
from plugin.rules.overlap import overlap_minutes

# At most this many other-patient overlaps are listed in one finding's evidence.
MAX_LISTED = 5
# Per slot, at most this many partners are recorded and this many running slots examined.
MAX_PARTNERS = 20
SCAN_LIMIT = 200


@dataclass(frozen=True, slots=True)
class TreatmentSlot:
    """One timed or group service of one visit, attributed to one of its performers."""

    therapist: str  # "Practitioner/x"
    patient: str
    encounter: str
    code: str
    start: datetime
    end: datetime
    group: bool  # a group code (97150): not one-on-one by definition
    billed_units: int = 0
    unit_price: float | None = None


def slots_of(visit: Visit, policy: Policy) -> list[TreatmentSlot]:
    """The visit's timed and group services with a documented period, one slot per performer."""
    units: dict[str, int] = {}
    prices: dict[str, float] = {}
    for line in visit.billed or ():
        units[line.code] = units.get(line.code, 0) + line.units
        if line.unit_price is not None:
            prices.setdefault(line.code, line.unit_price)
    slots = []
    for service in visit.services:
        group = service.code in policy.group
        if not (group or service.code in policy.timed) or not (service.start and service.end):
            continue
        for performer in service.performers:
            slots.append(
                TreatmentSlot(
                    therapist=performer.who,
                    patient=visit.patient or visit.encounter,
                    encounter=visit.encounter,
                    code=service.code,
                    start=service.start,
                    end=service.end,
                    group=group,
                    billed_units=units.get(service.code, 0),
                    unit_price=prices.get(service.code),
                )
            )
    return slots


@rule(
    "concurrent-therapy-overlap",
    Severity.ERROR,
    "CMS Pub. 100-04 ch.5 (group therapy; concurrent treatment) and Pub. 100-02 ch.15 §230.1",
)
def concurrent_therapy_overlap(
    slots: Sequence[TreatmentSlot], policy: Policy
) -> Iterator[tuple[str, Issue]]:
    """One-on-one minutes overlap the same therapist's treatment of another patient.

    That is concurrent therapy billed as one-on-one. A timed code (97112 and the other
    15-minute codes) means direct one-on-one contact; a therapist treating two or more
    patients in the same time period is furnishing group therapy, and under Part B "only
    97150 is reported for each patient". Visits of different
    patients are compared by therapist across the whole audit, so a single visit's review
    cannot see this. Source: CMS Pub. 100-04 ch.5 and Pub. 100-02 ch.15 §230.1 (group
    therapy, quoted in billing-rules.md §7). The smallest shared time that counts is policy
    data (limits.toml [concurrent]).
    """
    by_therapist: dict[str, list[TreatmentSlot]] = {}
    for slot in slots:
        by_therapist.setdefault(slot.therapist, []).append(slot)
    for therapist_slots in by_therapist.values():
        therapist_slots.sort(key=lambda s: s.start)
        found: dict[TreatmentSlot, _Overlaps] = {}
        running: list[tuple[datetime, int, TreatmentSlot]] = []  # a heap by end time
        for n, slot in enumerate(therapist_slots):
            while running and running[0][0] <= slot.start:
                heapq.heappop(running)
            partners = 0
            # Bounded work per slot: a feed that puts every visit at 00:00 must not make
            # this quadratic; a slot with MAX_PARTNERS partners is flagged "at least".
            for _, _, other in running[:SCAN_LIMIT]:
                if other.patient == slot.patient:
                    continue
                shared = overlap_minutes(other, slot)
                if shared < policy.concurrent_min_overlap:
                    continue
                for mine, theirs in ((slot, other), (other, slot)):
                    if not mine.group:
                        found.setdefault(mine, _Overlaps()).add(theirs, shared)
                partners += 1
                if partners >= MAX_PARTNERS:
                    break
            heapq.heappush(running, (slot.end, n, slot))
        for slot, overlaps in found.items():
            yield slot.encounter, _issue(slot, overlaps)


class _Overlaps:
    """What one slot overlaps, in bounded memory: a count of other patients, the most shared
    minutes, and a few examples."""

    __slots__ = ("patients", "most", "examples")

    def __init__(self) -> None:
        self.patients: set[str] = set()
        self.most = 0
        self.examples: list[tuple[TreatmentSlot, int]] = []

    def add(self, other: TreatmentSlot, shared: int) -> None:
        if len(self.patients) <= MAX_PARTNERS:
            self.patients.add(other.patient)
        self.most = max(self.most, shared)
        if len(self.examples) < MAX_LISTED:
            self.examples.append((other, shared))


def _issue(slot: TreatmentSlot, overlaps: _Overlaps) -> Issue:
    count = len(overlaps.patients)
    many = f"at least {MAX_PARTNERS}" if count > MAX_PARTNERS else str(count)
    listed = sorted(overlaps.examples, key=lambda item: -item[1])
    at_risk = (slot.unit_price or 0.0) * slot.billed_units
    money_text = f"; {money(at_risk)} billed as one-on-one is at risk" if at_risk else ""
    return Issue(
        code=slot.code,
        message=(
            f"{slot.code} {hhmm(slot.start)}-{hhmm(slot.end)} shares up to {overlaps.most} "
            f"minutes with the same therapist's treatment of {many} other patient"
            f"{'s' if count > 1 else ''}{money_text}"
        ),
        fix=(
            "If the patients were treated at the same time, bill 97150 (group) for each instead "
            "of one-on-one units; otherwise correct the documented times"
        ),
        evidence=tuple(
            f"{other.encounter} {other.code} {hhmm(other.start)}-{hhmm(other.end)} "
            f"({shared} min shared)"
            for other, shared in listed
        ),
        dollars_at_risk=at_risk,
    )


BATCH_RULES: tuple[Rule, ...] = (concurrent_therapy_overlap,)


def review_slots(
    slots: Iterable[TreatmentSlot], policy: Policy, rules: Sequence[Rule] = BATCH_RULES
) -> list[tuple[str, Finding]]:
    """Apply the batch rules; returns (encounter, finding) pairs in a stable order."""
    slots = list(slots)
    found = []
    for order, batch_rule in enumerate(rules):
        for encounter, issue in batch_rule.check(slots, policy):
            found.append((encounter, order, finding(batch_rule, issue)))
    found.sort(key=lambda item: (item[0], item[1], item[2].code or "", item[2].message))
    return [(encounter, finding) for encounter, _, finding in found]
