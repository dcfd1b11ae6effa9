"""The audit: every encounter in a folder of NDJSON reviewed with the same engine as ``review``,
plus the rules only a batch can see, on Dask, in memory that does not grow with the data.

Pass 1, one Dask task per slice of an input file: parse each line, route it by a hash of its
patient to a bucket's spill file (practitioners and organisations go to a shared file).
Pass 2, one task per bucket: group its lines by patient, build one index per patient (a visit's
history lives with its patient), review each encounter, write the bucket's rows to part files,
and spill every treatment slot (who treated whom, when) by a hash of the therapist.
Pass 3, one task per therapist bucket: the batch rules (concurrent therapy across patients).
The parent then streams the part files into findings and visits (CSV and Parquet), folding the
batch findings into their visits, and keeps only counters for report.html.

The number of buckets grows with the input's size, so each task holds a bounded share.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import heapq
import os
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from plugin.batch.ndjson import BadLine, patient_of
from plugin.domain import Severity
from plugin.errors import InputError, PluginError
from plugin.fhir.extract import build_visit, encounter_ids
from plugin.fhir.index import Index
from plugin.policy import load_policy
from plugin.rules.batch import TreatmentSlot, review_slots, slots_of
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
    "therapist",
    "payer",
    "verdict",
    "findings",
    "dollars_at_risk",
    "timed_minutes",
    "timed_units",
)
ERROR_FIELDS = ("file", "line", "problem")
SLICE_BYTES = 16 << 20  # pass 1 reads input files in slices of about this size
BUCKET_BYTES = 3 << 20  # pass 2 buckets hold about this much NDJSON each
TOP_VISITS = 20
ROW_GROUP = 10_000  # findings per Parquet row group (held in memory until written)
# Resources outside any patient's compartment that a review reads: every bucket gets them.
SHARED_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location"})


class AuditFailed(PluginError):
    """The audit could not finish (a worker died); the message says what to try."""


@dataclass
class AuditResult:
    visits: int
    findings: int
    bad_lines: list[BadLine]
    out: Path
    batch_findings: int = 0
    summary: dict = field(default_factory=dict)


def _bucket(key: str, buckets: int) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % buckets


# -- pass 1 ---------------------------------------------------------------------------------


def slices(files: list[Path], size: int = SLICE_BYTES) -> list[tuple[Path, int, int]]:
    """(file, start, end) byte ranges; a line belongs to the slice its first byte is in."""
    out = []
    for path in files:
        length = path.stat().st_size
        out += [(path, start, min(start + size, length)) for start in range(0, length, size)]
        if length == 0:
            out.append((path, 0, 0))
    return out


def route_slice(
    job: tuple[Path, int, int], number: int, scratch: Path, buckets: int
) -> list[tuple[str, int, str]]:
    """Pass 1 task: spill each line of one slice to its patient's bucket; returns the bad lines
    as (file, byte offset, problem) (line numbers are counted later, only for those)."""
    path, start, end = job
    bad = []
    handles: dict[int, object] = {}
    shared = scratch / f"shared-{number:05d}.ndjson"
    try:
        with path.open("rb") as fh, shared.open("wb") as shared_fh:
            if start:
                fh.seek(start - 1)
                fh.readline()  # a line that began before ``start`` belongs to the slice before
            offset = fh.tell()
            while offset < end:
                raw = fh.readline()
                if not raw:
                    break
                here, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                try:
                    resource = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    bad.append((path.name, here, f"not JSON ({exc})"))
                    continue
                if not isinstance(resource, dict) or not isinstance(
                    resource.get("resourceType"), str
                ):
                    bad.append((path.name, here, "not a FHIR resource"))
                    continue
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                patient = patient_of(resource)
                if patient is None and resource["resourceType"] in SHARED_TYPES:
                    shared_fh.write(line)
                    continue
                if patient is None:  # an Encounter without a subject is still reviewed, once
                    patient = f"{resource['resourceType']}/{resource.get('id')}"
                target = _bucket(patient, buckets)
                handle = handles.get(target)
                if handle is None:
                    name = f"b{target:05d}-{number:05d}.ndjson"
                    handle = handles[target] = (scratch / name).open("wb")
                handle.write(line)
    finally:
        for handle in handles.values():
            handle.close()
    return bad


def _line_numbers(bad: list[tuple[str, int, str]], source: Path) -> list[BadLine]:
    """Turn byte offsets into 1-based line numbers (reads only the files that had bad lines)."""
    found = []
    by_file: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for name, offset, problem in bad:
        by_file[name].append((offset, problem))
    for name, items in sorted(by_file.items()):
        items.sort()
        with (source / name).open("rb") as fh:
            line, position = 1, 0
            for offset, problem in items:
                line += fh.read(offset - position).count(b"\n")
                position = offset
                found.append(BadLine(name, line, problem))
    return found


# -- pass 2 ---------------------------------------------------------------------------------


def audit_bucket(
    bucket: int, scratch: Path, method: str | None, therapist_buckets: int
) -> list[tuple[str, int, str]]:
    """Pass 2 task: review every encounter of the bucket's patients; write visits-, findings-
    and slots- part files; returns visits that could not be reviewed as error rows."""
    policy = load_policy()
    shared = []
    for path in sorted(scratch.glob("shared-*.ndjson")):
        with path.open("rb") as fh:
            shared += [(orjson.loads(line), "") for line in fh]
    shared_index = Index(shared)
    by_patient: dict[str, list] = {}
    gc_was_on = gc.isenabled()
    gc.disable()  # the parsed resources are acyclic; collections here only cost time
    try:
        for path in sorted(scratch.glob(f"b{bucket:05d}-*.ndjson")):
            with path.open("rb") as fh:
                for line in fh:
                    resource = orjson.loads(line)
                    key = patient_of(resource) or f"{resource['resourceType']}/{resource.get('id')}"
                    by_patient.setdefault(key, []).append((resource, ""))
        return _review_patients(
            bucket, scratch, method, therapist_buckets, policy, shared_index, by_patient
        )
    finally:
        if gc_was_on:
            gc.enable()


def _review_patients(bucket, scratch, method, therapist_buckets, policy, shared, by_patient):
    problems = []
    slot_files: dict[int, object] = {}
    visits_path = scratch / f"visits-{bucket:05d}.csv"
    findings_path = scratch / f"findings-{bucket:05d}.csv"
    with (
        visits_path.open("w", newline="", encoding="utf-8") as vfh,
        findings_path.open("w", newline="", encoding="utf-8") as ffh,
    ):
        visits_out = csv.DictWriter(vfh, VISIT_FIELDS, extrasaction="ignore")
        findings_out = csv.DictWriter(ffh, FINDING_FIELDS, extrasaction="ignore")
        try:
            for patient in sorted(by_patient):
                index = Index(by_patient[patient], base=shared)
                for encounter_id in sorted(set(encounter_ids(index))):
                    try:
                        visit = build_visit(index, policy, encounter_id=encounter_id, method=method)
                        report = review(visit, policy)
                    except PluginError as exc:
                        problems.append((f"Encounter/{encounter_id}", 0, str(exc)))
                        continue
                    except Exception as exc:  # noqa: BLE001 - one visit must not end the audit
                        problems.append(
                            (
                                f"Encounter/{encounter_id}",
                                0,
                                f"could not be reviewed (internal error {type(exc).__name__})",
                            )
                        )
                        continue
                    therapist = next((p.ref for s in visit.services for p in s.performers), None)
                    base = {
                        "encounter": visit.encounter,
                        "patient": visit.patient,
                        "date": visit.day.isoformat() if visit.day else None,
                        "therapist": therapist,
                        "payer": visit.payer,
                        "method": report.method,
                    }
                    visits_out.writerow(
                        {
                            **base,
                            "verdict": report.verdict,
                            "findings": len(report.findings),
                            "dollars_at_risk": round(report.dollars_at_risk, 2),
                            "timed_minutes": report.total_timed_minutes,
                            "timed_units": report.total_timed_units,
                        }
                    )
                    for f in report.findings:
                        findings_out.writerow(
                            {
                                **base,
                                "rule": f.rule,
                                "severity": f.severity.value,
                                "code": f.code,
                                "message": f.message,
                                "dollars_at_risk": round(f.dollars_at_risk, 2),
                            }
                        )
                    for slot in slots_of(visit, policy):
                        target = _bucket(slot.therapist, therapist_buckets)
                        handle = slot_files.get(target)
                        if handle is None:
                            name = f"s{target:05d}-{bucket:05d}.ndjson"
                            handle = slot_files[target] = (scratch / name).open("wb")
                        handle.write(_slot_line(slot, base, bucket))
        finally:
            for handle in slot_files.values():
                handle.close()
    return problems


def _slot_line(slot: TreatmentSlot, base: dict, bucket: int) -> bytes:
    return (
        orjson.dumps(
            [
                slot.therapist,
                slot.patient,
                slot.encounter,
                slot.code,
                slot.start.isoformat(),
                slot.end.isoformat(),
                slot.group,
                slot.billed_units,
                slot.unit_price,
                base["patient"],
                base["therapist"],
                base["date"],
                base["payer"],
                base["method"],
                bucket,
            ]
        )
        + b"\n"
    )


# -- pass 3 ---------------------------------------------------------------------------------


def audit_therapists(therapist_bucket: int, scratch: Path) -> int:
    """Pass 3 task: the batch rules over every slot of the therapists in one bucket; findings
    go to part files by the patient bucket of their visit (folded in there at the merge)."""
    policy = load_policy()
    slots, context = [], {}
    for path in sorted(scratch.glob(f"s{therapist_bucket:05d}-*.ndjson")):
        with path.open("rb") as fh:
            for line in fh:
                row = orjson.loads(line)
                slot = TreatmentSlot(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    datetime.fromisoformat(row[4]),
                    datetime.fromisoformat(row[5]),
                    row[6],
                    row[7],
                    row[8],
                )
                slots.append(slot)
                context[slot.encounter] = (
                    {
                        "patient": row[9],
                        "therapist": row[10],
                        "date": row[11],
                        "payer": row[12],
                        "method": row[13],
                    },
                    row[14],
                )
    by_bucket: dict[int, list[dict]] = defaultdict(list)
    for encounter, f in review_slots(slots, policy):
        base, bucket = context[encounter]
        by_bucket[bucket].append(
            {
                "encounter": encounter,
                **base,
                "rule": f.rule,
                "severity": f.severity.value,
                "code": f.code,
                "message": f.message,
                "dollars_at_risk": round(f.dollars_at_risk, 2),
            }
        )
    for bucket, rows in by_bucket.items():
        path = scratch / f"x{bucket:05d}-{therapist_bucket:05d}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, FINDING_FIELDS, extrasaction="ignore").writerows(rows)
    return sum(len(rows) for rows in by_bucket.values())


# -- the whole audit ------------------------------------------------------------------------


def run_audit(
    source: Path,
    out: Path,
    method: str | None = None,
    scheduler: str | None = None,
    buckets: int | None = None,
    progress: bool = True,
) -> AuditResult:
    """Audit a folder of NDJSON into ``out`` (findings and visits as CSV and Parquet, errors.csv,
    report.html). ``buckets`` is the least number of patient buckets; large inputs get more."""
    import dask
    import dask.bag as db

    files = sorted(source.glob("*.ndjson"))
    if not files:
        raise InputError(f"{source}: no *.ndjson files (expected FHIR Bulk Data output)")
    out.mkdir(parents=True, exist_ok=True)
    total = sum(p.stat().st_size for p in files)
    buckets = max(buckets or 16, -(-total // BUCKET_BYTES))
    therapist_buckets = max(1, buckets // 4)
    jobs = slices(files)

    pool = None

    def compute(bag, label: str):
        nonlocal pool
        if progress:
            print(label, file=sys.stderr, flush=True)  # noqa: T201 - the progress display
        if scheduler in ("sync", "synchronous"):
            return bag.compute(scheduler="sync")
        if scheduler:
            from distributed import Client
            from distributed import progress as cluster_progress

            with Client(scheduler) as client:
                future = client.compute(bag)
                if progress:
                    cluster_progress(future)
                return future.result()
        if pool is None:  # one pool of worker processes for all three passes
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            workers = dask.config.get("num_workers", None) or os.cpu_count() or 1
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        if progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar():
                return bag.compute(scheduler="processes", pool=pool)
        return bag.compute(scheduler="processes", pool=pool)

    # A shared scratch folder: local processes see it; a cluster's workers must mount it too.
    scratch_root = os.environ.get("UNITGUARD_SCRATCH")
    with tempfile.TemporaryDirectory(prefix="unitguard-audit-", dir=scratch_root) as tmp:
        scratch = Path(tmp)
        try:
            routed = db.from_sequence(list(enumerate(jobs)), npartitions=len(jobs)).map(
                lambda item: route_slice(item[1], item[0], scratch, buckets)
            )
            bad_offsets = [
                b for part in compute(routed, "1/3 reading and routing by patient") for b in part
            ]
            reviewed = db.from_sequence(range(buckets), npartitions=buckets).map(
                audit_bucket, scratch=scratch, method=method, therapist_buckets=therapist_buckets
            )
            problems = [p for part in compute(reviewed, "2/3 reviewing visits") for p in part]
            batch = db.from_sequence(range(therapist_buckets), npartitions=therapist_buckets).map(
                audit_therapists, scratch=scratch
            )
            batch_findings = sum(compute(batch, "3/3 comparing therapists across patients"))
        except BrokenProcessPool as exc:
            raise AuditFailed(
                "an audit worker process died (out of memory?); nothing was written to "
                f"{out}; try more --partitions"
            ) from exc
        finally:
            if pool is not None:
                pool.shutdown()
        bad = _line_numbers(bad_offsets, source) + [
            BadLine(name, line, problem) for name, line, problem in problems
        ]
        summary = _merge(scratch, out, buckets)
    _write_csv(out / "errors.csv", ERROR_FIELDS, [b.__dict__ for b in bad])
    from plugin.batch.report import write_report

    write_report(out / "report.html", summary, len(bad))
    return AuditResult(summary["visits"], summary["findings"], bad, out, batch_findings, summary)


def _merge(scratch: Path, out: Path, buckets: int) -> dict:
    """Stream the part files into the outputs, fold batch findings into their visits, and
    count what the report needs (memory: counters and the top visits only)."""

    counts = {
        "visits": 0,
        "findings": 0,
        "unsupported": 0,
        "at_risk": 0.0,
        "by_rule": Counter(),
        "dollars_by_rule": Counter(),
        "by_therapist": Counter(),
        "by_month": Counter(),
        "dollars_by_month": Counter(),
        "dollars_by_therapist": Counter(),
        "top": [],
    }
    with (
        (out / "findings.csv").open("w", newline="", encoding="utf-8") as ffh,
        (out / "visits.csv").open("w", newline="", encoding="utf-8") as vfh,
        ParquetRows(out / "findings.parquet", FINDING_FIELDS) as findings_parquet,
        ParquetRows(out / "visits.parquet", VISIT_FIELDS) as visits_parquet,
    ):
        findings_out = csv.DictWriter(ffh, FINDING_FIELDS, extrasaction="ignore")
        visits_out = csv.DictWriter(vfh, VISIT_FIELDS, extrasaction="ignore")
        findings_out.writeheader()
        visits_out.writeheader()

        def emit_findings(rows: list[dict]) -> None:
            if not rows:
                return
            findings_out.writerows(rows)
            for f in rows:
                counts["findings"] += 1
                counts["by_rule"][f["rule"]] += 1
                counts["dollars_by_rule"][f["rule"]] += float(f["dollars_at_risk"] or 0)
                counts["by_therapist"][f["therapist"] or "unknown"] += 1
                counts["by_month"][(f["date"] or "unknown")[:7]] += 1
                counts["dollars_by_month"][(f["date"] or "unknown")[:7]] += float(
                    f["dollars_at_risk"] or 0
                )
                counts["dollars_by_therapist"][f["therapist"] or "unknown"] += float(
                    f["dollars_at_risk"] or 0
                )
            for r in rows:
                findings_parquet.add(r)

        for bucket in range(buckets):
            extra: dict[str, list[dict]] = defaultdict(list)  # this bucket's batch findings
            for path in sorted(scratch.glob(f"x{bucket:05d}-*.csv")):
                with path.open(encoding="utf-8") as fh:
                    for row in csv.DictReader(fh, FINDING_FIELDS):
                        row["dollars_at_risk"] = float(row["dollars_at_risk"] or 0)
                        extra[row["encounter"]].append(row)
            with (scratch / f"findings-{bucket:05d}.csv").open(encoding="utf-8") as fh:
                emit_findings(list(csv.DictReader(fh, FINDING_FIELDS)))
            with (scratch / f"visits-{bucket:05d}.csv").open(encoding="utf-8") as fh:
                for visit in csv.DictReader(fh, VISIT_FIELDS):
                    added = extra.get(visit["encounter"], [])
                    if added:
                        emit_findings(added)
                        visit["findings"] = int(visit["findings"]) + len(added)
                        visit["dollars_at_risk"] = round(
                            float(visit["dollars_at_risk"])
                            + sum(r["dollars_at_risk"] for r in added),
                            2,
                        )
                        if any(r["severity"] == Severity.ERROR.value for r in added):
                            visit["verdict"] = "unsupported"
                        elif visit["verdict"] == "supported":
                            visit["verdict"] = "needs-review"
                    visits_out.writerow(visit)
                    visits_parquet.add(visit)
                    counts["visits"] += 1
                    dollars = float(visit["dollars_at_risk"] or 0)
                    counts["at_risk"] += dollars
                    counts["unsupported"] += visit["verdict"] == "unsupported"
                    key = (dollars, int(visit["findings"]), visit["encounter"])
                    entry = (key, {k: visit[k] for k in ("encounter", "date", "payer", "verdict")})
                    if len(counts["top"]) < TOP_VISITS:
                        heapq.heappush(counts["top"], entry)
                    else:
                        heapq.heappushpop(counts["top"], entry)
    counts["top"] = [
        {**visit, "dollars_at_risk": key[0], "findings": key[1]}
        for key, visit in sorted(counts["top"], key=lambda e: (-e[0][0], -e[0][1], e[0][2]))
    ]
    return counts


NUMBER_FIELDS = {
    "dollars_at_risk": float,
    "findings": int,
    "timed_minutes": int,
    "timed_units": int,
}


class ParquetRows:
    """Rows appended to a Parquet file in row groups of at most ROW_GROUP rows, held as tuples
    until written (one group per call would pile up footer metadata until the file closes)."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        kinds = {float: pa.float64(), int: pa.int64()}
        self.fields, self.pa = fields, pa
        self.casts = [NUMBER_FIELDS.get(f) for f in fields]
        self.schema = pa.schema([(f, kinds.get(NUMBER_FIELDS.get(f), pa.string())) for f in fields])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.pending: list[tuple] = []

    def add(self, row: dict) -> None:
        self.pending.append(
            tuple(
                (cast(row[f]) if row.get(f) not in (None, "") else None)
                if cast
                else (row.get(f) or None)
                for f, cast in zip(self.fields, self.casts, strict=True)
            )
        )
        if len(self.pending) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            columns = zip(*self.pending, strict=True)
            table = {f: list(values) for f, values in zip(self.fields, columns, strict=True)}
            self.writer.write_table(self.pa.table(table, schema=self.schema))
            self.pending.clear()

    def __enter__(self) -> ParquetRows:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()
        self.writer.close()


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
