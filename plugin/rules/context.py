"""Facts every rule shares, computed once per review from the Visit and the Policy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from plugin.domain import BilledLine, Service, Visit
from plugin.narrative import PhraseMatcher
from plugin.policy.model import Policy
from plugin.units import Allocation, allocate


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

    @cached_property
    def timed_minutes(self) -> dict[str, int]:
        """Documented minutes of each timed code (codes with no documented minutes left out)."""
        minutes: dict[str, int] = {}
        for service in self.visit.services:
            if service.code in self.policy.timed and service.minutes is not None:
                minutes[service.code] = minutes.get(service.code, 0) + service.minutes
        return minutes

    @cached_property
    def billed_units(self) -> dict[str, int]:
        units: dict[str, int] = {}
        for line in self.lines:
            units[line.code] = units.get(line.code, 0) + line.units
        return units

    @cached_property
    def allocation(self) -> Allocation:
        return allocate(
            self.method,
            self.timed_minutes,
            self.billed_units,
            self.policy.first_unit_minutes,
            self.policy.unit_minutes,
        )

    def supported(self, code: str) -> int:
        if code in self.policy.timed:
            return self.allocation.units.get(code, 0)
        return 1 if code in self.services_by_code else 0

    def lines_of(self, code: str) -> list[BilledLine]:
        return [line for line in self.lines if line.code == code]

    def unit_price(self, code: str) -> float | None:
        prices = [p for p in (line.unit_price for line in self.lines_of(code)) if p is not None]
        return prices[0] if prices else None

    @cached_property
    def documented_items(self) -> list[DocumentedItem]:
        items = []
        for service in self.visit.services:
            if service.code in self.policy.documented:
                # The visit note is one shared string: its scans are cached once per visit,
                # not repeated (and copied) for each of thousands of services.
                texts = (service.note, *service.reasons, self.visit.note_text)
                items.append(
                    DocumentedItem(
                        service.code, service.ref, service.note, texts, service.goal_refs
                    )
                )
        performed = {s.code for s in self.visit.services}
        for code in sorted(self.policy.documented & set(self.billed_units) - performed):
            items.append(
                DocumentedItem(code, self.visit.encounter, "", (self.visit.note_text,), ())
            )
        return items

    def clauses(self, text: str) -> list[str]:
        found = self._clauses.get(text)
        if found is None:
            found = self._clauses[text] = self.matcher.clauses(text)
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
