"""A whole organisation's synthetic export, shaped like Synthea's FHIR R4 Bulk output: what an
audit meets in practice, where therapy visits are a few per cent of the encounters.

Each patient has about ten years of care: yearly wellness visits with vitals, labs, a PHQ-2 and
a flu shot; ambulatory follow-ups with vitals and a prescription; urgent-care and emergency
visits with an acute Condition and a few labs; the odd inpatient stay; every encounter with a
Synthea-style clinical note (DocumentReference, text/plain) and a Claim whose CPT codes are not
therapy codes (E/M, labs, imaging). About two patients in five also have an outpatient therapy
episode in 2026, weekly visits built with ``plugin.synthetic`` (PT: CMS worked example 1; OT:
97530 + 97535 with GO) under one certified plan of care with a progress report on the tenth
treatment day, scheduled into their team's hourly slots as ``plugin.batch.synth`` does,
so no two patients share a therapist's minutes, each session's note written anew. Every therapy
visit is clean: an audit should find nothing.

therapy.csv lists the therapy encounters (what an audit should review); the rest should be
skipped. No real patient data; reproducible from the seed.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from plugin.batch.general_care import write_other_encounters, write_patient, write_physicians
from plugin.batch.ndjson_writer import NdjsonWriter
from plugin.batch.therapy_episode import write_episode

TYPES = (
    "Patient",
    "Encounter",
    "Practitioner",
    "Organization",
    "Coverage",
    "Condition",
    "Observation",
    "Immunization",
    "MedicationRequest",
    "Procedure",
    "DocumentReference",
    "Goal",
    "CarePlan",
    "Claim",
    "ClaimResponse",
)
VISITS_PER_TEAM = 1500
THERAPY_SHARE = 0.4  # patients with an outpatient therapy episode in 2026


def generate_mixed(
    out: Path, patients: int = 60, seed: int = 1, binary_notes: bool = False
) -> dict[str, int]:
    """Write the export (one NDJSON file per type) and therapy.csv; returns counts.
    ``binary_notes``: every note's text in Binary.ndjson, as a Bulk export of Epic gives it."""
    # S311/B311: synthetic test data must be reproducible from its seed; nothing secret here.
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    out.mkdir(parents=True, exist_ok=True)
    writer = NdjsonWriter(out, TYPES, binary_notes)
    therapy_rows: list[tuple[str, str]] = []
    episodes = [rng.random() < THERAPY_SHARE for _ in range(patients)]
    expected_visits = sum(episodes) * 9
    teams = max(2, -(-expected_visits // VISITS_PER_TEAM))
    booked: dict[tuple[int, str], int] = {}
    written: set[str] = set()
    encounters = 0
    try:
        doctors = write_physicians(writer)
        for p in range(patients):
            pid, payer, sopt, conditions = write_patient(rng, writer, p)
            therapy_days: set[str] = set()
            if episodes[p]:
                for day, encounter, discipline in write_episode(
                    rng, writer, pid, payer, sopt, teams, booked, written
                ):
                    therapy_days.add(day)
                    therapy_rows.append((encounter, discipline))
                    encounters += 1
            encounters += write_other_encounters(
                rng, writer, pid, doctors, conditions, therapy_days
            )
    finally:
        writer.close()
    with (out / "therapy.csv").open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(["encounter", "discipline"])
        rows.writerows(therapy_rows)
    return {
        "patients": patients,
        "encounters": encounters,
        "therapy_visits": len(therapy_rows),
        "resources": sum(writer.counts.values()),
    }
