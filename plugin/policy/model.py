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
    # unit_amount's answers by (code, day): the data does not change once loaded.
    _amounts: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def schedule_for(self, day: date) -> MpfsSchedule | None:
        """The period in force on a day: the latest one of its year that has started."""
        found = [s for s in self.schedules if s.year == day.year and s.effective_from <= day]
        return max(found, key=lambda s: s.effective_from) if found else None

    def gpci_for(self, year: int) -> Gpci | None:
        found = [g for g in self.gpcis if g.locality == self.locality and g.year <= year]
        return max(found, key=lambda g: g.year) if found else None

    def unit_amount(self, code: str, day: date) -> tuple[float, str] | None:
        """($ per unit, where it comes from) for a code on a day, or None when not in the data."""
        try:
            return self._amounts[code, day]
        except KeyError:
            found = self._amounts[code, day] = self._unit_amount(code, day)
            return found

    def _unit_amount(self, code: str, day: date) -> tuple[float, str] | None:
        schedule = self.schedule_for(day)
        if schedule is None:
            return None
        label = f"MPFS {schedule.year}"
        if self.locality:
            gpci = self.gpci_for(day.year)
            rvu = schedule.rvus.get(code)
            if gpci and rvu:
                work, pe, mp = rvu
                total = work * gpci.work + pe * gpci.pe + mp * gpci.mp
                amount = round(total * schedule.conversion_factor, 2)
                return amount, f"{label} locality {gpci.locality} (GPCI {gpci.year})"
        amount = schedule.amounts.get(code)
        if amount is None:
            return None
        return amount, f"{label} national"


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
    # timed | untimed, formed once (rules and the reader ask for it per line and procedure).
    _therapy_codes: frozenset[str] = field(
        default=frozenset(), init=False, repr=False, compare=False
    )

    # ptp_edits_for's answers by date of service (the edits do not change once loaded).
    _ptp_by_day: dict = field(default_factory=dict, init=False, repr=False, compare=False)

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

    def method_for_payer(self, payer: str | None) -> str:
        name = (payer or "").lower()
        for needle, method in self.payer_methods:
            if needle in name:
                return method
        return self.default_method
