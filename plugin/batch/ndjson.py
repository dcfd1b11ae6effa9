"""Stream FHIR Bulk Data NDJSON files; a malformed line is reported with file and line number
and skipped, never fatal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class BadLine:
    file: str
    line: int
    problem: str


def read_ndjson(path: Path, bad: list[BadLine]) -> Iterator[dict]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                resource = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                bad.append(BadLine(path.name, number, f"not JSON ({exc})"))
                continue
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                bad.append(BadLine(path.name, number, "not a FHIR resource"))
                continue
            yield resource


def patient_of(resource: dict) -> str | None:
    """The patient a resource belongs to (its compartment), or None for shared resources."""
    if resource["resourceType"] == "Patient":
        return resource.get("id")
    for field in ("subject", "patient", "beneficiary", "for"):
        value = resource.get(field)
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None
