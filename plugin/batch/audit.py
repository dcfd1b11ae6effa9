"""The audit: partition NDJSON by patient (memory stays flat), review every encounter with the
same engine as ``review`` on Dask, and write findings, visits and errors.

Pass 1 streams every file once and appends each line to the spill file of its patient's bucket
(hash of the patient id), or to the shared file (practitioners, organisations). Pass 2 is one
Dask task per bucket: it groups its lines by patient, builds one index per patient (the visit's
history lives with the patient) and reviews each encounter.
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from plugin.batch.ndjson import BadLine, patient_of, read_ndjson
from plugin.errors import InputError
from plugin.fhir.extract import build_visit, encounter_ids
from plugin.fhir.index import Index
from plugin.policy import load_policy
from plugin.rules.engine import review

FINDING_FIELDS = (
    "encounter",
    "patient",
    "date",
    "therapist",
    "payer",
    "method",
    "rule",
    "severity",
    "code",
    "message",
    "dollars_at_risk",
)
VISIT_FIELDS = (
    "encounter",
    "patient",
    "date",
    "payer",
    "verdict",
    "findings",
    "dollars_at_risk",
    "timed_minutes",
    "timed_units",
)


@dataclass
class AuditResult:
    visits: int
    findings: int
    bad_lines: list[BadLine]
    out: Path


def partition(source: Path, folder: Path, buckets: int) -> tuple[list[Path], Path, list[BadLine]]:
    files = sorted(source.glob("*.ndjson"))
    if not files:
        raise InputError(f"{source}: no *.ndjson files (expected FHIR Bulk Data output)")
    bad: list[BadLine] = []
    parts = [folder / f"part-{n:04d}.ndjson" for n in range(buckets)]
    shared = folder / "shared.ndjson"
    handles = [p.open("wb") for p in parts]
    with shared.open("wb") as shared_fh:
        try:
            for path in files:
                for resource in read_ndjson(path, bad):
                    patient = patient_of(resource)
                    line = orjson.dumps(resource) + b"\n"
                    if patient is None:
                        shared_fh.write(line)
                    else:
                        digest = hashlib.blake2b(patient.encode(), digest_size=4).digest()
                        handles[int.from_bytes(digest, "big") % buckets].write(line)
        finally:
            for handle in handles:
                handle.close()
    return parts, shared, bad


def audit_partition(part: Path, shared: Path, method: str | None) -> list[dict]:
    """Review every encounter of the patients in one bucket (runs on a Dask worker)."""
    policy = load_policy()
    with shared.open("rb") as fh:
        shared_resources = [(orjson.loads(line), "") for line in fh if line.strip()]
    by_patient: dict[str, list] = {}
    with part.open("rb") as fh:
        for line in fh:
            resource = orjson.loads(line)
            by_patient.setdefault(patient_of(resource) or "", []).append((resource, ""))
    rows = []
    for resources in by_patient.values():
        index = Index(resources + shared_resources)
        for encounter_id in encounter_ids(index):
            visit = build_visit(index, policy, encounter_id=encounter_id, method=method)
            report = review(visit, policy)
            therapist = next((p.ref for s in visit.services for p in s.performers), None)
            base = {
                "encounter": visit.encounter,
                "patient": visit.patient,
                "date": visit.day.isoformat() if visit.day else None,
                "therapist": therapist,
                "payer": visit.payer,
                "method": report.method,
            }
            rows.append(
                {
                    "kind": "visit",
                    **base,
                    "verdict": report.verdict,
                    "findings": len(report.findings),
                    "dollars_at_risk": round(report.dollars_at_risk, 2),
                    "timed_minutes": report.total_timed_minutes,
                    "timed_units": report.total_timed_units,
                }
            )
            for f in report.findings:
                rows.append(
                    {
                        "kind": "finding",
                        **base,
                        "rule": f.rule,
                        "severity": f.severity.value,
                        "code": f.code,
                        "message": f.message,
                        "dollars_at_risk": round(f.dollars_at_risk, 2),
                    }
                )
    return rows


def run_audit(
    source: Path,
    out: Path,
    method: str | None = None,
    scheduler: str | None = None,
    buckets: int | None = None,
    progress: bool = True,
) -> AuditResult:
    """Audit a folder of NDJSON into ``out`` (findings.csv/.parquet, visits.csv, errors.csv,
    report.html)."""
    import dask.bag as db

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unitguard-audit-") as scratch:
        parts, shared, bad = partition(source, Path(scratch), buckets or 16)
        bag = (
            db.from_sequence(parts, npartitions=len(parts))
            .map(audit_partition, shared=shared, method=method)
            .flatten()
        )
        if scheduler:
            from distributed import Client

            with Client(scheduler) as client:
                rows = client.compute(bag).result()
        elif progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar():
                rows = bag.compute(scheduler="processes")
        else:
            rows = bag.compute(scheduler="processes")
    visits = sorted((r for r in rows if r["kind"] == "visit"), key=lambda r: r["encounter"])
    findings = sorted(
        (r for r in rows if r["kind"] == "finding"),
        key=lambda r: (r["encounter"], r["rule"], r["code"] or ""),
    )
    _write_csv(out / "visits.csv", VISIT_FIELDS, visits)
    _write_csv(out / "findings.csv", FINDING_FIELDS, findings)
    _write_csv(out / "errors.csv", ("file", "line", "problem"), [b.__dict__ for b in bad])
    _write_parquet(out / "findings.parquet", FINDING_FIELDS, findings)
    from plugin.batch.report import write_report

    write_report(out / "report.html", visits, findings, bad)
    return AuditResult(len(visits), len(findings), bad, out)


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({f: [r.get(f) for r in rows] for f in fields})
    pq.write_table(table, path)
