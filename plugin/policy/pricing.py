"""The fee schedule estimate of one patient's therapy day, with the multiple procedure payment
reduction (MPPR) as Medicare applies it to therapy (standard library only).

Claims Processing Manual ch.5 §10.7 (as the MACs restate it, e.g. Novitas): the reduction
applies to the "always therapy" codes whose multiple procedure indicator is 5, when more than
one unit or procedure is furnished to the same patient on the same day, across PT, OT and SLP.
The services are ranked by practice expense; the first unit of the highest is paid in full;
every further unit, of that code or another, is paid full work and malpractice and half its
practice expense. Ties on practice expense go to the higher fee schedule amount.
"""

from __future__ import annotations

from datetime import date

from plugin.policy.model import Mpfs, UnitPrice

__all__ = ["price_day"]


def price_day(
    mpfs: Mpfs, day: date, lines: list[tuple[str, int]]
) -> list[tuple[float, str] | None]:
    """($ total, where it comes from) of each (code, units) line of one patient's day, in the
    order given; None for a line whose code has no fee schedule amount that day."""
    prices: list[UnitPrice | None] = [mpfs.unit_price(code, day) for code, _ in lines]
    ranked = [
        (price.practice_expense, price.full, -index)
        for index, (price, (_, units)) in enumerate(zip(prices, lines, strict=True))
        if price is not None and price.practice_expense is not None and units > 0
    ]
    first = -max(ranked)[2] if ranked else None  # the line whose first unit is paid in full
    found: list[tuple[float, str] | None] = []
    for index, (price, (_, units)) in enumerate(zip(prices, lines, strict=True)):
        if price is None:
            found.append(None)
            continue
        if price.practice_expense is None or units <= 0:
            found.append((round(price.full * units, 2), price.label))
            continue
        full_units = 1 if index == first else 0
        total = price.full * full_units + price.reduced * (units - full_units)
        reduced = units - full_units
        label = price.label + (f" (MPPR on {reduced} of {units} units)" if reduced else "")
        found.append((round(total, 2), label))
    return found
