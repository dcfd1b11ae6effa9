"""Units that documented minutes support under the three unit methods (pure, stdlib).

- ``cms``: pool the minutes of all timed codes; total units from the ladder; each code gets its
  full 15-minute units, then the remaining units go to the codes with the most remaining minutes
  (CMS Claims Processing Manual ch.5 §20.2 C; ties may go either way).
- ``ama``: each code alone on the ladder (8-22 = 1, 23-37 = 2, ...).
- ``strict15``: each code alone, one unit per full 15 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

METHODS = ("cms", "ama", "strict15")


def ladder_units(minutes: int, first_unit: int = 8, unit: int = 15) -> int:
    """Units for a number of minutes on the CMS ladder: 0 under 8, then (m + 7) // 15."""
    if minutes < first_unit:
        return 0
    return (minutes + unit - first_unit) // unit


@dataclass(frozen=True, slots=True)
class Allocation:
    """What the minutes support: the allocation chosen and the most each code could get."""

    method: str
    total_minutes: int
    total_units: int  # the most units all timed codes together may bill
    units: dict[str, int]  # an allocation the method allows, closest to what was billed
    most: dict[str, int]  # the most units each code can get in any allowed allocation


def allocate(
    method: str,
    minutes: Mapping[str, int],
    billed: Mapping[str, int] | None = None,
    first_unit: int = 8,
    unit: int = 15,
) -> Allocation:
    """Allocate units to timed codes from their minutes.

    ``billed`` only breaks ties: among the allocations the method allows, the one that gives
    each code what was billed is chosen where it can, so a tie settled either way is accepted.
    """
    billed = billed or {}
    minutes = {c: max(0, int(m)) for c, m in minutes.items()}
    total = sum(minutes.values())
    if method == "ama":
        units = {c: ladder_units(m, first_unit, unit) for c, m in minutes.items()}
        return Allocation(method, total, sum(units.values()), units, dict(units))
    if method == "strict15":
        units = {c: m // unit for c, m in minutes.items()}
        return Allocation(method, total, sum(units.values()), units, dict(units))
    if method != "cms":
        raise ValueError(f"unknown unit method {method!r}; use one of {', '.join(METHODS)}")

    total_units = ladder_units(total, first_unit, unit)
    full: dict[str, int] = {}
    rest: dict[str, int] = {}
    for code, m in minutes.items():
        full[code], rest[code] = divmod(m, unit)
    extra = max(0, total_units - sum(full.values()))
    if not extra:  # every unit is a full 15 minutes of its code (or no minutes at all)
        return Allocation(method, total, total_units, full, dict(full))
    # Codes ranked by remaining minutes; the first `extra` get one more unit each. A code tied
    # with the last one given could have had it instead, so it may also reach full + 1.
    ranked = sorted(
        (c for c in minutes if rest[c] > 0),
        key=lambda c: (-rest[c], -(billed.get(c, 0) > full[c]), c),
    )
    chosen = ranked[:extra]
    cutoff = rest[chosen[-1]] if chosen else None
    units = dict(full)
    most = dict(full)
    for code in chosen:
        units[code] += 1
    if cutoff is not None:
        for code, left in rest.items():
            if left > 0 and left >= cutoff:
                most[code] += 1
    return Allocation(method, total, total_units, units, most)
