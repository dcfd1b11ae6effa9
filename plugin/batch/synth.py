"""Synthetic FHIR Bulk Data NDJSON with known injected defects (``unitguard synth``).

Each visit is a clean baseline (CMS worked example 1: 97112 24 min + 97110 23 min, billed 2 + 1
with GP, everything documented); at the defect rate one defect (``plugin.batch.defects``) is
injected and recorded in truth.csv, so precision and recall of each rule can be measured.

The clinic is scheduled like a real one: teams of a PT with a PTA, OT, OTA and SLP (about one
team per 1,500 visits, a year's caseload), each PT seeing at most ten patients a day in hourly
slots from 07:00, so no two patients share a therapist's minutes unless the
``concurrent-therapy-overlap`` defect puts a second patient into an occupied slot (both visits
are then in truth.csv).
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from plugin.batch.defects import DEFECTS, HISTORY
from plugin.synthetic.ids import unique_ids
from plugin.synthetic.visit import VisitBuilder, clean_visit

__all__ = ["DEFECTS", "HISTORY", "encounters_written", "generate"]


VISITS_PER_TEAM = 1500
SLOTS_PER_DAY = 10
ROLE_IDS = ("pt", "pta", "ot", "ota", "slp", "md")
TYPES = (
    "Patient",
    "Encounter",
    "Practitioner",
    "Coverage",
    "Goal",
    "CarePlan",
    "Observation",
    "DocumentReference",
    "Procedure",
    "Claim",
    "ClaimResponse",
)


def _measured_before(b: VisitBuilder, day: str) -> None:
    """The earlier Berg score two weeks before this visit (the builder's fixed date would be
    after January's visits and make their progress unmeasurable)."""
    earlier = (datetime.fromisoformat(day) - timedelta(days=14)).date().isoformat()
    for e in b.entries:
        resource = e["resource"]
        if resource["resourceType"] == "Observation" and "encounter" not in resource:
            resource["effectiveDateTime"] = f"{earlier}T09:05:00-05:00"


def shift_times(value, hours: int):
    """Move every date-time in a resource by whole hours (the visit's schedule slot)."""
    if isinstance(value, dict):
        return {k: shift_times(v, hours) for k, v in value.items()}
    if isinstance(value, list):
        return [shift_times(v, hours) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T" and value[:4].isdigit():
        return (datetime.fromisoformat(value) + timedelta(hours=hours)).isoformat()
    return value


def assign_team(line: bytes, team: int) -> bytes:
    for role in ROLE_IDS:
        line = line.replace(
            b'"Practitioner/%s"' % role.encode(),
            b'"Practitioner/%s-t%d"'
            % (
                role.encode(),
                team,
            ),
        )
    return line


def encounters_written(visits: int, injected: dict[str, int]) -> int:
    """How many encounters ``generate`` wrote: the visits plus each injected defect's
    earlier treatment days."""
    return visits + sum(len(days) * injected.get(rule, 0) for rule, days in HISTORY.items())


def _history_visit(n: int, k: int, day: str) -> dict:
    """An earlier clean visit of patient v{n} on ``day``: its own encounter, note, measure and
    claim (ids prefixed v{n}h{k}), for the patient v{n} and under the same plan of care."""
    builder = clean_visit(day=day)
    _measured_before(builder, day)
    bundle = unique_ids(builder.bundle(), f"v{n}h{k}")
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] not in ("Patient", "CarePlan", "Practitioner")
    ]
    text = orjson.dumps(bundle).replace(
        f'"Patient/v{n}h{k}-pat-1"'.encode(), f'"Patient/v{n}-pat-1"'.encode()
    )
    return orjson.loads(text)


def generate(out: Path, visits: int, defect_rate: float, seed: int) -> dict[str, int]:
    """Write one NDJSON file per resource type plus truth.csv; returns defects per rule."""
    # S311/B311: synthetic test data must be reproducible from its seed; nothing secret here.
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    out.mkdir(parents=True, exist_ok=True)
    files = {t: (out / f"{t}.ndjson").open("wb") for t in TYPES}
    injected: dict[str, int] = dict.fromkeys(DEFECTS, 0)
    teams = max(2, -(-visits // VISITS_PER_TEAM))
    booked: dict[tuple[int, str], int] = {}  # (team, day) -> slots taken
    recent: list[tuple[int, str, int, int]] = []  # (team, day, slot, visit) to double-book
    teams_written: set[int] = set()
    with (out / "truth.csv").open("w", newline="") as truth_fh:
        truth = csv.writer(truth_fh)
        truth.writerow(["encounter", "rule"])
        try:
            for n in range(visits):
                rule = None
                if rng.random() < defect_rate:
                    rule = rng.choice(sorted(DEFECTS))
                    if rule == "concurrent-therapy-overlap" and not recent:
                        rule = None
                if rule == "concurrent-therapy-overlap":
                    team, day, slot, other = rng.choice(recent)
                    truth.writerow([f"Encounter/v{other}-enc-1", rule])
                else:
                    while True:
                        team = rng.randrange(teams)
                        day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                        slot = booked.get((team, day), 0)
                        if rule in ("missing-kx", "targeted-review-threshold") and day <= (
                            "2026-01-02"
                        ):
                            continue  # its earlier claims need a day before this one
                        if slot < SLOTS_PER_DAY:
                            booked[(team, day)] = slot + 1
                            break
                    recent.append((team, day, slot, n))
                    if len(recent) > 500:
                        recent.pop(rng.randrange(len(recent)))
                builder = clean_visit(day=day)
                _measured_before(builder, day)
                if rule:
                    DEFECTS[rule](builder)
                    injected[rule] += 1
                bundles = [(unique_ids(builder.bundle(), f"v{n}"), slot)]
                for k, before in enumerate(HISTORY.get(rule or "", ())):
                    earlier = (datetime.fromisoformat(day) - timedelta(days=before)).date()
                    earlier_slot = booked.get((team, earlier.isoformat()), 0)
                    booked[(team, earlier.isoformat())] = earlier_slot + 1
                    bundles.append((_history_visit(n, k, earlier.isoformat()), earlier_slot))
                for bundle, at in bundles:
                    for entry in bundle["entry"]:
                        resource = entry["resource"]
                        if resource["resourceType"] == "Practitioner":
                            if team in teams_written:
                                continue
                            resource = {**resource, "id": f"{resource['id']}-t{team}"}
                        line = orjson.dumps(shift_times(resource, at - 2))  # slot 0 at 07:00
                        files[resource["resourceType"]].write(assign_team(line, team) + b"\n")
                    teams_written.add(team)
                if rule:
                    truth.writerow([f"Encounter/v{n}-enc-1", rule])
        finally:
            for fh in files.values():
                fh.close()
    return injected
