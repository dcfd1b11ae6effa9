"""Facts every rule shares, computed once per review from the Visit and the Policy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from plugin.domain import BilledLine, Service, Visit
from plugin.narrative import MAX_REVIEW_CHARS, PhraseMatcher, readable_part
from plugin.policy.model import Policy
from plugin.units import Allocation, allocate, ladder_units


class cached_property:  # noqa: N801 (named as the functools one it stands in for)
    """functools.cached_property without the lock Python 3.11 takes on every first read
    (a Context serves one review, in one thread)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.fn(instance)
        return value


@dataclass(frozen=True, slots=True)
class DocumentedItem:
    """A service whose narrative the documentation rules read (97112 by default)."""

    code: str
    ref: str
    own_note: str  # the Procedure's own note ("" when the code was billed with no Procedure)
    texts: tuple[str, ...]  # own note, reasons, the visit note: read each on its own
    goal_refs: tuple[str, ...]


@dataclass
class Context:
    visit: Visit
    policy: Policy
    matcher: PhraseMatcher
    _clauses: dict[str, list[str]] = field(default_factory=dict)
    _affirmed: dict[tuple[str, str], bool] = field(default_factory=dict)
    memo: dict[Any, Any] = field(default_factory=dict)  # facts a few rules share
    _supported: dict[str, int] = field(default_factory=dict)
    # rules whose findings were dropped: they rested on what could not be read (engine.review)
    unchecked: list[Any] = field(default_factory=list)
    cut: dict[str, bool] = field(default_factory=dict)  # texts read in part (True) or not at all
    _readable: dict[str, str] = field(default_factory=dict)
    _read_chars: int = 0  # of all the texts read so far, against MAX_REVIEW_CHARS

    @property
    def method(self) -> str:
        return self.visit.method

    @property
    def has_billing(self) -> bool:
        return self.visit.billed is not None

    @property
    def lines(self) -> tuple[BilledLine, ...]:
        return self.visit.billed or ()

    @cached_property
    def services_by_code(self) -> dict[str, list[Service]]:
        grouped: dict[str, list[Service]] = defaultdict(list)
        for service in self.visit.services:
            grouped[service.code].append(service)
        return dict(grouped)

    def _minutes(self, services) -> dict[str, int]:
        """Whole minutes per timed code: each code's counted seconds summed, then floored
        (3 x 7 min 50 s is 23 minutes); an aide's or student's minutes count for nothing."""
        seconds: dict[str, float] = {}
        for service in services:
            if (
                service.code in self.policy.timed
                and service.seconds is not None
                and not service.unqualified_only
            ):
                seconds[service.code] = seconds.get(service.code, 0.0) + service.seconds
        return {code: int(total // 60 + 1e-9) for code, total in seconds.items()}

    @cached_property
    def timed_minutes(self) -> dict[str, int]:
        """This visit's documented minutes of each timed code (codes without minutes left out)."""
        return self._minutes(self.visit.services)

    @cached_property
    def day_minutes(self) -> dict[str, int]:
        """The day's minutes of each timed code: this visit's plus the same-day visits' (§2b)."""
        if not self.visit.same_day:
            return self.timed_minutes
        return self._minutes(
            [*self.visit.services, *(s for v in self.visit.same_day for s in v.services)]
        )

    @cached_property
    def other_billed(self) -> dict[str, int]:
        """Units the day's other visits already billed, per code."""
        units: dict[str, int] = {}
        for other in self.visit.same_day:
            for line in other.billed:
                units[line.code] = units.get(line.code, 0) + line.units
        return units

    @cached_property
    def billed_units(self) -> dict[str, int]:
        units: dict[str, int] = {}
        for line in self.lines:
            units[line.code] = units.get(line.code, 0) + line.units
        return units

    @cached_property
    def total_only(self) -> bool:
        """Only a total timed minutes is documented for a billed timed code (no per-code
        minutes): the units are checked against the total, the per-code split is unverifiable."""
        if self.visit.stated_timed_minutes is None:
            return False
        billed = [c for c, n in self.billed_units.items() if n > 0 and c in self.policy.timed]
        performed = [s.code for s in self.visit.services if s.code in self.policy.timed]
        return any(c not in self.day_minutes for c in billed + performed)

    @cached_property
    def allocation(self) -> Allocation:
        if self.total_only:
            return self._total_allocation()
        billed = dict(self.billed_units)
        for code, units in self.other_billed.items():
            billed[code] = billed.get(code, 0) + units
        return allocate(
            self.method,
            self.day_minutes,
            billed,
            self.policy.first_unit_minutes,
            self.policy.unit_minutes,
        )

    def _total_allocation(self) -> Allocation:
        """Units from the stated total timed minutes, given to the billed codes in turn."""
        others = sum(m for c, m in self.day_minutes.items() if c not in self.services_by_code)
        total = (self.visit.stated_timed_minutes or 0) + others
        total_units = ladder_units(total, self.policy.first_unit_minutes, self.policy.unit_minutes)
        left = total_units - sum(n for c, n in self.other_billed.items() if c in self.policy.timed)
        units = {}
        timed_billed = sorted(
            ((c, n) for c, n in self.billed_units.items() if c in self.policy.timed),
            key=lambda item: (-item[1], item[0]),
        )
        for code, billed in timed_billed:
            give = max(0, min(billed, left))
            left -= give
            units[code] = give + self.other_billed.get(code, 0)
        return Allocation("cms", total, total_units, units, dict(units))

    def supported(self, code: str) -> int:
        """Units of the code this visit may bill: what the day supports less what the day's
        other visits already billed (never below 0). Several rules ask: computed once a code."""
        try:
            return self._supported[code]
        except KeyError:
            found = self._supported[code] = self._supported_units(code)
            return found

    def _supported_units(self, code: str) -> int:
        if code in self.policy.timed:
            day = self.allocation.units.get(code, 0)
            return max(0, day - self.other_billed.get(code, 0))
        counted = [s for s in self.services_by_code.get(code, []) if not s.unqualified_only]
        return 1 if counted and not self.other_billed.get(code) else 0

    def suggested(self, code: str) -> int:
        """Units of the code to bill under the method (before charges: what the minutes allow)."""
        return self.supported(code)

    @cached_property
    def own_units(self) -> int:
        """The timed units this visit may bill (the day's less the other visits' billed)."""
        if not self.visit.same_day:
            return self.allocation.total_units
        codes = set(self.allocation.units) | set(self.billed_units)
        return sum(self.supported(c) for c in codes if c in self.policy.timed)

    @cached_property
    def _lines_by_code(self) -> dict[str, list[BilledLine]]:
        grouped: dict[str, list[BilledLine]] = defaultdict(list)
        for line in self.lines:
            grouped[line.code].append(line)
        return dict(grouped)

    def lines_of(self, code: str) -> list[BilledLine]:
        """The visit's billed lines of a code, in their order (shared: do not change it)."""
        return self._lines_by_code.get(code, [])

    def unit_price(self, code: str) -> float | None:
        prices = [p for p in (line.unit_price for line in self.lines_of(code)) if p is not None]
        return prices[0] if prices else None

    @cached_property
    def visit_note_read(self) -> str:
        """The visit note as the documentation rules read it: its goal statements left out."""
        return self.matcher.without_goals(self.visit.note_text)

    def documentation(self, service: Service) -> tuple[str, ...]:
        """What documents a service, each text read on its own and without its goal statements
        (a goal states no response, technique or deficit of the session): its own note, its
        reasons and the visit note."""
        own = tuple(self.matcher.without_goals(t) for t in (service.note, *service.reasons))
        return (*own, self.visit_note_read)

    @cached_property
    def documented_items(self) -> list[DocumentedItem]:
        items = []
        for service in self.visit.services:
            if service.code in self.policy.documented:
                # The visit note is one shared string: its scans are cached once per visit,
                # not repeated (and copied) for each of thousands of services.
                items.append(
                    DocumentedItem(
                        service.code,
                        service.ref,
                        service.note,
                        self.documentation(service),
                        service.goal_refs,
                    )
                )
        performed = {s.code for s in self.visit.services}
        for code in sorted(self.policy.documented & set(self.billed_units) - performed):
            items.append(
                DocumentedItem(code, self.visit.encounter, "", (self.visit_note_read,), ())
            )
        return items

    def readable(self, text: str) -> str:
        """The part of a text the rules read: its beginning (plugin.narrative.readable_part),
        or nothing once the review has read MAX_REVIEW_CHARS of its texts. A text cut short is
        remembered, for the reading note the review adds."""
        found = self._readable.get(text)
        if found is None:
            found = readable_part(text) if self._read_chars < MAX_REVIEW_CHARS else ""
            if found is not text:
                self.cut[text] = bool(found)  # read in part, or not at all
            self._read_chars += len(found)
            self._readable[text] = found
        return found

    def clauses(self, text: str) -> list[str]:
        found = self._clauses.get(text)
        if found is None:
            found = self._clauses[text] = self.matcher.clauses(self.readable(text))
        return found

    def affirmed(self, list_name: str, text: str) -> list[str]:
        return self.matcher.affirmed(list_name, self.clauses(text))

    def has_affirmed(self, list_name: str, text: str) -> bool:
        key = (list_name, text)
        found = self._affirmed.get(key)
        if found is None:
            found = self._affirmed[key] = self.matcher.has_affirmed(list_name, self.clauses(text))
        return found

    def item_has(self, list_name: str, item: DocumentedItem) -> bool:
        """Whether any of the item's texts affirms a phrase of the list."""
        return any(self.has_affirmed(list_name, text) for text in item.texts if text)
