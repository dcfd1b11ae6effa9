"""The minutes a visit documents: Encounter.length, the totals a note states, a Procedure's
duration or stated minutes, and each minute counted for one timed code only."""

from __future__ import annotations

import bisect
import re
from dataclasses import replace

from plugin.domain import Service
from plugin.fhir.index import Index, number, obj, seq, text
from plugin.policy.model import Policy

# Encounter.length: UCUM codes first, then the unit texts people write.
LENGTH_CODES = {"min": 1.0, "h": 60.0, "s": 1 / 60}
LENGTH_UNITS = {
    "min": 1.0,
    "mins": 1.0,
    "minute": 1.0,
    "minutes": 1.0,
    "h": 60.0,
    "hr": 60.0,
    "hrs": 60.0,
    "hour": 60.0,
    "hours": 60.0,
    "s": 1 / 60,
    "sec": 1 / 60,
    "secs": 1 / 60,
    "second": 1 / 60,
    "seconds": 1 / 60,
}
# Durations in a Procedure extension: UCUM time units to seconds.
DURATION_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}
# Minutes stated in text: "23 min", "23 minutes", "23-min".
_MINUTES = re.compile(r"\b(\d{1,3})\s*-?\s*(?:min|mins|minutes)\b", re.IGNORECASE)
TOTAL_TIMED = re.compile(
    r"total\s+timed(?:[\s-]+code)?(?:\s+treatment)?(?:\s+(?:minutes|mins|min|time))?"
    r"\s*(?:\(\s*min(?:utes)?\s*\))?\s*(?:[:=]|was|of|is)?\s*(\d{1,3})\b",
    re.IGNORECASE,
)
TOTAL_TREATMENT = re.compile(
    r"total\s+treatment\s+(?:time|minutes|mins)\s*(?:\(\s*min(?:utes)?\s*\))?"
    r"\s*(?:[:=]|was|of|is)?\s*(\d{1,3})\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")


def length_minutes(index: Index, encounter: dict, key: str) -> int | None:
    """Encounter.length in minutes, by its UCUM code, else its unit text; unknown -> note."""
    length = encounter.get("length")
    if not isinstance(length, dict):
        return None
    value = length.get("value")
    if value.__class__ is int:  # the common case, read as number() reads it
        value = float(value)
    else:
        value = number(value)
    if value is None or value < 0:
        return None
    code, unit = length.get("code"), length.get("unit")
    code = code.strip() if isinstance(code, str) else ""
    unit = unit.strip().lower() if isinstance(unit, str) else ""
    factor = LENGTH_CODES.get(code) or LENGTH_UNITS.get(unit)
    if factor is None and not code and not unit:
        factor = 1.0
        index.note(f"{key}.length has no unit; read as minutes")
    if factor is None:
        index.note(
            f"{key}.length is in an unknown unit ({code or unit!r}); "
            "total treatment time counts as not documented"
        )
        return None
    return int(value * factor + 1e-9)


def stated_minutes(pattern: re.Pattern, note: str) -> int | None:
    """The minutes a total-time pattern (TOTAL_TIMED, TOTAL_TREATMENT) states in the note."""
    # A cheap test first, which never skips a match: both patterns start with the word "total"
    # (IGNORECASE matches only the ASCII cases of its letters) and end with a digit (\d). A
    # note with neither is not searched (the search costs microseconds per note).
    lowered = note.lower()
    at = lowered.find("total")
    if at < 0:
        return None
    if len(lowered) != len(note):  # lower() lengthened a letter: positions differ
        at = 0
    if _DIGIT.search(note, at) is None:
        return None
    found = pattern.search(note, at)  # no match starts before the first "total"
    return int(found.group(1)) if found else None


def duration_seconds(procedure: dict) -> float | None:
    """A Duration (or Quantity in a UCUM time unit) held by any extension of the Procedure."""
    for ext in seq(procedure.get("extension")):
        ext = obj(ext)
        quantity = obj(ext.get("valueDuration") or ext.get("valueQuantity"))
        value = number(quantity.get("value"))
        unit = text(quantity.get("code")) or text(quantity.get("unit")).strip().lower()
        factor = DURATION_SECONDS.get(unit) or (
            60.0 * LENGTH_UNITS[unit] if unit in LENGTH_UNITS else None
        )
        if value is not None and value >= 0 and factor:
            return value * factor
    return None


def note_minutes(note: str, code: str | None = None) -> int | None:
    """Minutes stated in a text; with ``code``, only on a line or clause that names the code."""
    if code is None:
        found = _MINUTES.search(note)
        return int(found.group(1)) if found else None
    for line in re.split(r"[\n;]", note):
        at = line.find(code)
        if at >= 0:
            found = _MINUTES.search(line, at + len(code))
            if found:
                return int(found.group(1))
    return None


def _no_timed_overlap(services: list[Service], policy: Policy) -> bool:
    periods = sorted(
        (s.start, s.end) for s in services if s.code in policy.timed and s.start and s.end
    )
    return all(later[0] >= earlier[1] for earlier, later in zip(periods, periods[1:], strict=False))


def count_once(services: list[Service], policy: Policy) -> list[Service]:
    """Each minute counted for one timed code only (contract §2, rules minutes-overlap,
    group-overlap, untimed-overlap): a timed service's counted seconds leave out what an
    earlier-starting timed service, group therapy or an evaluation already covers. A supervised
    modality or unattended e-stim running meanwhile takes nothing away (contract §3,
    untimed-overlap, changed 2026-12-07)."""
    timed, group, untimed_exclusive = policy.timed, policy.group, policy.untimed_exclusive
    periods = []  # the timed services' periods, while nothing else is to be left out
    for service in services:
        start, end = service.start, service.end
        if start and end:
            if service.code in group or service.code in untimed_exclusive:
                break
            if service.code in timed:
                periods.append((start, end))
    else:
        if len(periods) < 2:
            return services
        periods.sort()
        reach = periods[0][0]  # the end of the period before (none before the first)
        for start, end in periods:
            if start < reach:
                break
            reach = end
        else:
            return services
    exclusive = sorted(
        (s.start, s.end)
        for s in services
        if s.start and s.end and (s.code in policy.group or s.code in policy.untimed_exclusive)
    )
    if not exclusive and _no_timed_overlap(services, policy):
        return services
    merged: list[list] = []
    for start, end in exclusive:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    starts = [m[0] for m in merged]
    timed = sorted(
        (i for i, s in enumerate(services) if s.code in policy.timed and s.start and s.end),
        key=lambda i: services[i].start,
    )
    result = list(services)
    reach = None  # the latest end of the timed services seen so far
    for i in timed:
        service = services[i]
        start, end = service.start, service.end
        free_from = max(start, reach) if reach else start
        counted = max(0.0, (end - free_from).total_seconds())
        if counted and merged:
            at = max(0, bisect.bisect_right(starts, free_from) - 1)
            while at < len(merged) and merged[at][0] < end:
                shared = (min(end, merged[at][1]) - max(free_from, merged[at][0])).total_seconds()
                counted -= max(0.0, shared)
                at += 1
        reach = max(reach, end) if reach else end
        if service.seconds is not None and counted < service.seconds:
            result[i] = replace(service, seconds=max(0.0, counted))
    return result
