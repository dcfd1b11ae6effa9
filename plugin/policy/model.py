"""Versioned policy data as plain frozen dataclasses (standard library only; rules read these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a policy table comes from and when it applies."""

    name: str
    version: str
    source: str
    effective_from: date | None = None
    confidence: str = ""


@dataclass(frozen=True, slots=True)
class PtpEdit:
    """One NCCI procedure-to-procedure edit: column2 is denied beside column1 on one date."""

    column1: str
    column2: str
    effective: date
    deletion: date | None
    modifier_indicator: str  # "0" never bypassed, "1" bypassed by 59/X{EPSU}, "9" not applicable
    source: str

    def in_force(self, day: date | None) -> bool:
        if self.modifier_indicator == "9":
            return False
        if day is None:
            return self.deletion is None
        return self.effective <= day and (self.deletion is None or day < self.deletion)


@dataclass(frozen=True, slots=True)
class EpisodePolicy:
    """Plan-of-care and progress-report timing (episode.toml)."""

    payers: tuple[str, ...]
    certification_days: int
    max_interval_days: int
    progress_report_days: int
    order_exception_days: int
    recert_warning_days: int
    certifiers: frozenset[str]
    report_writers: frozenset[str]
    plan_of_care_loinc: frozenset[str]
    progress_report_loinc: frozenset[str]
    not_progress_report_loinc: frozenset[str]


@dataclass(frozen=True, slots=True)
class NotCovered:
    """A code a payer does not pay as billed (e.g. Medicare and 97014), and what it pays."""

    payer: str  # "medicare", or a lower-case substring of the payor name
    code: str
    instead: str
    why: str
    source: str


@dataclass(frozen=True, slots=True)
class KxYear:
    year: int
    pt_slp: float
    ot: float
    source: str
    confidence: str


@dataclass(frozen=True, slots=True)
class PhraseList:
    name: str
    phrases: tuple[str, ...]
    negatable: bool = True
    label: str = ""


@dataclass(frozen=True, slots=True)
class MpfsSchedule:
    """One Medicare Physician Fee Schedule period: per-code RVUs and national amounts."""

    year: int
    effective_from: date
    conversion_factor: float
    amounts: dict[str, float]  # code -> national non-facility $ per unit
    rvus: dict[str, tuple[float, float, float]]  # code -> (work, non-facility PE, MP)
    source: str
    confidence: str
    # From a CMS RVU file (shipped excerpt or import): each code's status (A, B, I, N, ...) and
    # the codes whose multiple procedure indicator is 5 (therapy MPPR, ch.5 §10.7).
    status: dict[str, str] = field(default_factory=dict)
    mppr: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MueVersion:
    """One quarter's practitioner MUEs: the most units of a code per patient per date."""

    effective_from: date
    units: dict[str, int]
    source: str
    confidence: str = ""


@dataclass(frozen=True, slots=True)
class CmsVersion:
    """Where one version of a CMS table came from, for ``policy show``."""

    kind: str  # "ptp", "mue", "mpfs", "gpci"
    effective_from: date
    origin: str  # "shipped excerpt" or "imported"
    source: str  # the CMS file's name and release
    confidence: str = ""


@dataclass(frozen=True, slots=True)
class Gpci:
    """A Medicare payment locality's geographic practice cost indices for one year."""

    locality: str
    name: str
    year: int
    work: float
    pe: float
    mp: float


@dataclass(frozen=True, slots=True)
class Mpfs:
    """The fee schedule amounts the KX running total falls back on, and where payers report
    allowed amounts and year-to-date totals (contract.md section 2, year-to-date therapy spend)."""

    schedules: tuple[MpfsSchedule, ...] = ()
    gpcis: tuple[Gpci, ...] = ()
    locality: str = ""  # "" = national
    ytd_category_groups: dict[str, str] = field(default_factory=dict)  # X12 code -> group
    ytd_coverage_extensions: tuple[tuple[str, str], ...] = ()  # (url, group)
    allowed_categories: frozenset[str] = frozenset({"eligible"})
    benefit_categories: frozenset[str] = frozenset({"benefit"})
    patient_share_categories: frozenset[str] = frozenset({"copay", "deductible"})
    # Therapy MPPR: the share of the practice expense paid for every unit of the day but the
    # one ranked first (Claims Processing Manual ch.5 §10.7; 50% since 2013).
    mppr_pe_share: float = 0.5
    # unit_price's answers by (code, day): the data does not change once loaded.
    _amounts: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def schedule_for(self, day: date) -> MpfsSchedule | None:
        """The period in force on a day: the latest one of its year that has started."""
        best = None
        for schedule in self.schedules:  # the later of two of one date (an import) wins
            if schedule.year == day.year and schedule.effective_from <= day:
                if best is None or schedule.effective_from >= best.effective_from:
                    best = schedule
        return best

    def statuses_on(self, day: date) -> dict[str, tuple[str, str]]:
        """code -> (MPFS status, its source) from the latest RVU file started by ``day``."""
        latest = None
        for schedule in self.schedules:  # the later of two of one date (an import) wins
            if schedule.status and schedule.effective_from <= day:
                if latest is None or schedule.effective_from >= latest.effective_from:
                    latest = schedule
        if latest is None:
            return {}
        return {code: (status, latest.source) for code, status in latest.status.items()}

    def gpci_for(self, year: int) -> Gpci | None:
        found = [g for g in self.gpcis if g.locality == self.locality and g.year <= year]
        return max(found, key=lambda g: g.year) if found else None

    def unit_amount(self, code: str, day: date) -> tuple[float, str] | None:
        """($ per unit, where it comes from) for a code on a day, or None when not in the data."""
        price = self.unit_price(code, day)
        return (price.full, price.label) if price else None

    def unit_price(self, code: str, day: date) -> UnitPrice | None:
        """One unit's price on a day, in full and with its practice expense reduced by the
        therapy MPPR, or None when the code has no amount for that day."""
        try:
            return self._amounts[code, day]
        except KeyError:
            found = self._amounts[code, day] = self._unit_price(code, day)
            return found

    def _unit_price(self, code: str, day: date) -> UnitPrice | None:
        schedule = self.schedule_for(day)
        if schedule is None:
            return None
        label = f"MPFS {schedule.year}"
        rvu = schedule.rvus.get(code)
        gpci = self.gpci_for(day.year) if self.locality else None
        factor = schedule.conversion_factor
        if gpci and rvu:
            work, pe, mp = rvu[0] * gpci.work, rvu[1] * gpci.pe, rvu[2] * gpci.mp
            label = f"{label} locality {gpci.locality} (GPCI {gpci.year})"
            full = round((work + pe + mp) * factor, 2)
        else:
            amount = schedule.amounts.get(code)
            if amount is None:
                return None
            work, pe, mp = rvu or (0.0, 0.0, 0.0)
            label = f"{label} national"
            full = amount
        reducible = code in schedule.mppr and rvu is not None
        reduced = round((work + pe * self.mppr_pe_share + mp) * factor, 2) if reducible else full
        return UnitPrice(full, reduced, pe if reducible else None, label)


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """One unit of a code on a day: its fee schedule amount, the amount with the practice
    expense reduced (the therapy MPPR; the same as ``full`` for codes it does not apply to),
    and the practice expense that ranks it (None: not subject to the MPPR)."""

    full: float
    reduced: float
    practice_expense: float | None
    label: str


@dataclass(frozen=True, slots=True)
class Policy:
    """Every threshold, code list, pair and phrase the rules use."""

    first_unit_minutes: int
    unit_minutes: int
    default_method: str
    method_citations: dict[str, str]
    timed: frozenset[str]
    untimed: frozenset[str]
    group: frozenset[str]
    untimed_exclusive: frozenset[str]
    documented: frozenset[str]
    discipline_modifiers: dict[str, str]  # GP -> PT
    assistant_modifiers: dict[str, str]  # CQ -> GP
    distinct_modifiers: frozenset[str]
    session_modifiers: frozenset[str]
    per_day_units: dict[str, int]
    untimed_units_per_day: int  # untimed codes: units on one date (1)
    untimed_unit_exceptions: dict[str, int]
    not_covered: tuple[NotCovered, ...]  # codes a payer does not pay, with what it pays
    episode: EpisodePolicy
    kx_modifier: str
    kx_years: dict[int, KxYear]
    review_threshold: float
    de_minimis_share: float
    assistant_payment_share: float
    ptp: tuple[PtpEdit, ...]
    payer_methods: tuple[tuple[str, str], ...]  # (lower-case substring, method)
    medicare_sopt_system: str
    medicare_sopt_prefix: str
    medicare_names: tuple[str, ...]
    phrase_lists: dict[str, PhraseList]
    negation_window: int
    pre_negation: frozenset[str]
    post_negation: tuple[str, ...]
    cloned_similarity: float
    cloned_min_words: int
    concurrent_min_overlap: int
    provenance: tuple[Provenance, ...] = field(default=())
    # KX running total (issue 12): fee schedule fallback and Medicare Advantage recognition.
    mpfs: Mpfs = field(default_factory=Mpfs)
    medicare_advantage_sopt_prefixes: tuple[str, ...] = ()
    medicare_advantage_names: tuple[str, ...] = ()
    # CMS files (issue 23): MPFS status codes that mean Medicare never pays the code separately
    # (status -> why), the practitioner MUEs by quarter, and where each CMS table came from.
    not_paid_statuses: dict[str, str] = field(default_factory=dict)
    mue: tuple[MueVersion, ...] = ()
    cms_versions: tuple[CmsVersion, ...] = ()
    # timed | untimed, formed once (rules and the reader ask for it per line and procedure).
    _therapy_codes: frozenset[str] = field(
        default=frozenset(), init=False, repr=False, compare=False
    )

    # ptp_edits_for's, unit_caps' and not_covered_on's answers by date of service (the data
    # does not change once loaded).
    _ptp_by_day: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _caps_by_day: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _uncovered_by_day: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_therapy_codes", self.timed | self.untimed)

    @property
    def therapy_codes(self) -> frozenset[str]:
        """Codes that need GP/GO/GN on every line (timed and untimed therapy codes)."""
        return self._therapy_codes

    def ptp_edits_for(self, day: date | None) -> dict[tuple[str, str], PtpEdit]:
        """The PTP edits in force on a date, keyed by (column1, column2); later rows win."""
        found = self._ptp_by_day.get(day)
        if found is None:
            found = self._ptp_by_day[day] = {
                (e.column1, e.column2): e for e in self.ptp if e.in_force(day)
            }
        return found

    def unit_caps(self, day: date | None) -> dict[str, int]:
        """Units of a code allowed on one date: the practitioner MUEs in force that day (the
        latest quarter that started on or before it), over the payer caps of limits.toml."""
        caps = self._caps_by_day.get(day)
        if caps is None:
            found = [m for m in self.mue if day is None or m.effective_from <= day]
            caps = self._caps_by_day[day] = dict(self.per_day_units)
            if found:
                caps.update(found[-1].units)  # self.mue is sorted by effective date
        return caps

    def not_covered_on(self, day: date | None) -> tuple[NotCovered, ...]:
        """The payer code lists, plus, for Medicare, each code whose MPFS status on the day
        (from the latest RVU file in force) means it is never paid separately (e.g. 97010,
        status B). The lists win for a code they name (they say what to bill instead)."""
        found = self._uncovered_by_day.get(day)
        if found is None:
            named = {(n.payer, n.code) for n in self.not_covered}
            statuses = self.mpfs.statuses_on(day) if day is not None else {}
            found = self._uncovered_by_day[day] = self.not_covered + tuple(
                NotCovered("medicare", code, "", self._status_why(status), source)
                for code, (status, source) in sorted(statuses.items())
                if status in self.not_paid_statuses and ("medicare", code) not in named
            )
        return found

    def _status_why(self, status: str) -> str:
        return f"its fee schedule status is {status} ({self.not_paid_statuses[status]})"

    def method_for_payer(self, payer: str | None) -> str:
        name = (payer or "").lower()
        for needle, method in self.payer_methods:
            if needle in name:
                return method
        return self.default_method
