"""Synthetic FHIR Bulk Data NDJSON with known injected defects (``unitguard synth``).

Each visit is a clean baseline (CMS worked example 1: 97112 24 min + 97110 23 min, billed 2 + 1
with GP, everything documented); at the defect rate one defect is injected and recorded in
truth.csv, so precision and recall of each rule can be measured.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path

import orjson

from plugin.synthetic import VisitBuilder, clean_visit, unique_ids


def _units(b: VisitBuilder) -> None:
    b.claim_items[0]["quantity"]["value"] = 4


def _no_gp(b: VisitBuilder) -> None:
    b.claim_items[0]["modifier"] = []


def _overlap(b: VisitBuilder) -> None:
    proc = next(
        e["resource"]
        for e in b.entries
        if e["resource"]["resourceType"] == "Procedure"
        and e["resource"]["code"]["coding"][0]["code"] == "97110"
    )
    proc["performedPeriod"]["start"] = b.at("09:14")


def _unsigned(b: VisitBuilder) -> None:
    for e in b.entries:
        if e["resource"]["resourceType"] == "DocumentReference":
            e["resource"]["docStatus"] = "preliminary"
            e["resource"].pop("authenticator", None)


def _total_time(b: VisitBuilder) -> None:
    b.encounter["length"]["value"] = 30


DEFECTS: dict[str, Callable[[VisitBuilder], None]] = {
    "units-exceed-time": _units,
    "missing-discipline-modifier": _no_gp,
    "minutes-overlap": _overlap,
    "doc-unsigned": _unsigned,
    "total-time-mismatch": _total_time,
}
TYPES = (
    "Patient",
    "Encounter",
    "Practitioner",
    "Coverage",
    "Goal",
    "Observation",
    "DocumentReference",
    "Procedure",
    "Claim",
)


def generate(out: Path, visits: int, defect_rate: float, seed: int) -> dict[str, int]:
    """Write one NDJSON file per resource type plus truth.csv; returns defects per rule."""
    # S311/B311: synthetic test data must be reproducible from its seed; nothing secret here.
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    out.mkdir(parents=True, exist_ok=True)
    files = {t: (out / f"{t}.ndjson").open("wb") for t in TYPES}
    injected: dict[str, int] = dict.fromkeys(DEFECTS, 0)
    practitioners_written = False
    with (out / "truth.csv").open("w", newline="") as truth_fh:
        truth = csv.writer(truth_fh)
        truth.writerow(["encounter", "rule"])
        try:
            for n in range(visits):
                day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                builder = clean_visit(day=day)
                rule = None
                if rng.random() < defect_rate:
                    rule = rng.choice(sorted(DEFECTS))
                    DEFECTS[rule](builder)
                    injected[rule] += 1
                bundle = unique_ids(builder.bundle(), f"v{n}")
                for entry in bundle["entry"]:
                    resource = entry["resource"]
                    if resource["resourceType"] == "Practitioner":
                        if practitioners_written:
                            continue
                    files[resource["resourceType"]].write(orjson.dumps(resource) + b"\n")
                practitioners_written = True
                if rule:
                    truth.writerow([f"Encounter/v{n}-enc-1", rule])
        finally:
            for fh in files.values():
                fh.close()
    return injected
