"""The plain visit model the rules see: small frozen dataclasses, standard library only.

Everything FHIR-shaped is turned into these in ``plugin.fhir`` (``build_visit``); the rules never
see a FHIR path, a code system or a reference they would have to resolve themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

UNQUALIFIED_ROLES = frozenset({"AIDE", "TECH", "STUDENT"})


class Severity(StrEnum):
    """How bad a finding is; the order is worst first."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class Performer:
    """Who furnished a service: a FHIR reference, a discipline and whether an assistant."""

    ref: str
    discipline: str | None  # "PT", "OT", "SLP", "MD", ... or None when unknown
    assistant: bool = False  # PTA or OTA
    person: str = ""  # the Practitioner behind a PractitionerRole actor ("" = ref itself)
    furnished: bool = True  # False for a supervising or co-signing performer (function)

    @property
    def unqualified(self) -> bool:
        """An aide, technician or student: not a therapist, assistant, physician or NPP."""
        return self.discipline in UNQUALIFIED_ROLES

    @property
    def who(self) -> str:
        """The person, however the EHR referred to them (role or practitioner)."""
        return self.person or self.ref


@dataclass(frozen=True, slots=True)
class Service:
    """One documented intervention (one completed Procedure)."""

    ref: str  # "Procedure/abc"
    code: str  # CPT or HCPCS code
    minutes: int | None  # whole minutes documented for it; None when not documented
    start: datetime | None = None
    end: datetime | None = None
    performers: tuple[Performer, ...] = ()
    note: str = ""  # Procedure.note texts joined
    reasons: tuple[str, ...] = ()  # texts of the Conditions in reasonReference
    goal_refs: tuple[str, ...] = ()  # "Goal/x" from the pertainsToGoal extension
    # Seconds that count toward units: the documented time less any minute already counted for
    # an earlier timed service, group therapy or an evaluation (None: not documented).
    seconds: float | None = None
    minutes_from: str = "period"  # period | duration | procedure note | visit note
    # Worked out from the performers once, when the Service is made (rules ask many times):
    # who furnished the minutes (a supervising or co-signing performer did not); whether every
    # one of them is an assistant (independent minutes); whether every one of them is an aide,
    # technician or student.
    furnishing: tuple[Performer, ...] = field(init=False, repr=False, compare=False)
    assistant_only: bool = field(init=False, repr=False, compare=False)
    unqualified_only: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One loop, no generators: a review makes a Service for every Procedure it reads.
        people = []
        assistants = unqualified = True
        for person in self.performers:
            if person.furnished:
                people.append(person)
                if not person.assistant:
                    assistants = False
                if not person.unqualified:
                    unqualified = False
        object.__setattr__(self, "furnishing", tuple(people))
        object.__setattr__(self, "assistant_only", bool(people) and assistants)
        object.__setattr__(self, "unqualified_only", bool(people) and unqualified)


@dataclass(frozen=True, slots=True)
class Goal:
    ref: str
    text: str
    active: bool
    measurable: bool


@dataclass(frozen=True, slots=True)
class Measure:
    """A numeric objective measure (an Observation)."""

    ref: str
    code: str  # "system|code" of the first coding, or the text
    value: float
    when: datetime | date | None
    this_visit: bool


@dataclass(frozen=True, slots=True)
class BilledLine:
    """One billed line of a claim or one charge item."""

    ref: str  # "Claim/x#item2" or "ChargeItem/y"
    code: str
    units: int
    modifiers: frozenset[str] = frozenset()
    amount: float | None = None  # money of the whole line
    day: date | None = None
    encounter: str | None = None  # "Encounter/x"
    by_date: bool = False  # its Claim names no encounter: it belongs to its date of service

    @property
    def unit_price(self) -> float | None:
        if self.amount is None or self.units <= 0:
            return None
        return self.amount / self.units


@dataclass(frozen=True, slots=True)
class EarlierVisit:
    """What the history says about an earlier visit of the same patient."""

    encounter: str
    day: date | None
    texts: tuple[str, ...]  # the notes of its services and its visit note


@dataclass(frozen=True, slots=True)
class PlanOfCare:
    """One plan of care of the discipline, as read (contract §2b, "The episode")."""

    ref: str  # "CarePlan/x"
    start: date | None
    end: date | None  # the last day the plan covers (its period end), before the 90-day cap
    certified_on: date | None = None  # when a physician/NPP signed it (None: not certified)
    certified_by: str = ""  # who, and how ("Practitioner/md-1 (CarePlan.author)")
    order_exception: bool = False  # CY2025: signed order plus the plan sent within 30 days
    sent_on: date | None = None  # when the plan was sent to the physician/NPP, if known


@dataclass(frozen=True, slots=True)
class ProgressReport:
    ref: str  # "DocumentReference/x"
    day: date
    author: str  # the author reference, or "" when not named
    role: str | None  # PT, OT, SLP, PTA, MD, ... of the author; None when unknown


@dataclass(frozen=True, slots=True)
class Episode:
    """The plan-of-care episode of one discipline around the reviewed visit."""

    discipline: str  # PT, OT or SLP
    plans: tuple[PlanOfCare, ...] = ()
    reports: tuple[ProgressReport, ...] = ()
    treatment_days: tuple[date, ...] = ()  # distinct dates with a service of the discipline
    unknown: str = ""  # why the plan or history could not be read ("" = read)
    history_unknown: str = ""  # why earlier visits could not be read ("" = read)


@dataclass(frozen=True, slots=True)
class Unread:
    """Something the review needed and could not read (contract §2, "Unread is not absent"): a
    search the EHR refused, a type it does not serve, a note's text it would not give, a payer
    named but not found. Plain data, nothing about the patient."""

    resource: str  # the FHIR type not read: "Observation", "Coverage", "Binary", ...
    why: str  # as the reading note says it: "the EHR refused the Observation search (400: ...)"
    part: str = ""  # which part ("category exam", "DocumentReference/n1"); "" = all of it
    ehr: str = ""  # who would not give it ("Epic", "Oracle Health"); "" = not known


@dataclass(frozen=True, slots=True)
class DayVisit:
    """Another encounter of the patient on the same date of service and discipline (§2b)."""

    encounter: str
    services: tuple[Service, ...]
    billed: tuple[BilledLine, ...]


@dataclass(frozen=True, slots=True)
class Visit:
    """One therapy visit with everything the rules may read about it.

    ``billed`` is None when nothing is billed yet (before charges are entered, or at Epic, which
    exposes no charges): the billing-line rules then stay silent.
    """

    encounter: str  # "Encounter/x"
    patient: str | None
    day: date | None
    total_minutes: int | None  # total treatment time; None = not documented
    services: tuple[Service, ...] = ()
    billed: tuple[BilledLine, ...] | None = None
    goals: tuple[Goal, ...] = ()
    measures: tuple[Measure, ...] = ()  # this visit's and earlier ones, see Measure.this_visit
    note_text: str = ""  # the visit note (DocumentReference) text
    note_signed: bool = False
    has_note: bool = False
    payer: str | None = None
    medicare: bool = False
    method: str = "cms"
    other_lines: tuple[BilledLine, ...] = ()  # the patient's lines of other encounters
    earlier_visits: tuple[EarlierVisit, ...] = ()
    notes: tuple[str, ...] = field(default=())  # reading problems: dangling references, ...
    stated_timed_minutes: int | None = None  # "total timed code minutes" stated in the note
    same_day: tuple[DayVisit, ...] = ()  # other encounters of the date and discipline (§2b)
    unreadable: tuple[str, ...] = ()  # billed lines that could not be read (needs review)
    episodes: tuple[Episode, ...] = ()  # one per discipline of the visit (§2b, "The episode")
    episode_required: bool = False  # the payer requires a certified plan and progress reports
    spend: Spend | None = None  # the KX running total's inputs (Medicare visits only)
    # What the review needed and could not read: no rule decides from its absence (§2)
    unread: tuple[Unread, ...] = ()

    @property
    def year(self) -> int | None:
        return self.day.year if self.day else None


@dataclass(frozen=True, slots=True)
class Quote:
    """What a finding read, for people: a sentence of the note with the matched words marked
    (``marks``: [start, end) spans of ``text``), the times and values read, or, for something
    missing, the part of the note that was searched. ``text`` is at most 200 characters."""

    kind: str  # "read", "discounted" (read, but negated or a plan), "searched", "values"
    text: str
    marks: tuple[tuple[int, int], ...] = ()
    where: str = ""  # "the 97112 note", "the visit note", ...
    source: str | None = None  # the resource it was read from, when known

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "text": self.text}
        if self.marks:
            out["marks"] = [list(m) for m in self.marks]
        if self.where:
            out["where"] = self.where
        if self.source:
            out["source"] = self.source
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    code: str | None
    message: str
    fix: str
    citation: str
    evidence: tuple[str, ...] = ()
    dollars_at_risk: float = 0.0
    # What the finding makes unpayable, per billed line: (line ref, dollars). The visit's
    # dollars at risk take the largest amount per line, so no line is counted twice.
    at_risk: tuple[tuple[str, float], ...] = ()
    quotes: tuple[Quote, ...] = ()  # what it read, in words (contract section 5)

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            "citation": self.citation,
            "evidence": list(self.evidence),
            # the sentences and values read, as text (contract section 5), and the same with
            # their kind, marked words and where they were read, for the pages
            "quotes": [q.text for q in self.quotes],
            "quote_details": [q.to_dict() for q in self.quotes],
            "dollars_at_risk": round(self.dollars_at_risk, 2),
        }


@dataclass(frozen=True, slots=True)
class SpendLine:
    """What one therapy line adds to the KX running total: its allowed amount, not its charge.

    ``source`` says where the amount comes from: "payer-allowed (ClaimResponse/x)",
    "MPFS 2026 national", "charge" (no allowed amount and no fee schedule amount) or "none".
    """

    ref: str  # the billed line ("Claim/x#item1"), or a payer item for a service billed elsewhere
    code: str
    day: date | None
    group_modifiers: frozenset[str]  # GP / GN / GO on the line
    allowed: float
    source: str


@dataclass(frozen=True, slots=True)
class ReportedYtd:
    """A year-to-date amount the payer reported for one threshold group, as of a date."""

    group: str  # "PT+SLP" or "OT"
    amount: float
    as_of: date
    source: str  # "CoverageEligibilityResponse/x" or "Coverage/y extension"


@dataclass(frozen=True, slots=True)
class Spend:
    """The patient's therapy spend this year as the payer counts it (allowed amounts)."""

    lines: tuple[SpendLine, ...] = ()
    reported: tuple[ReportedYtd, ...] = ()
    medicare_advantage: str | None = None  # why the plan is Medicare Advantage, None if not
