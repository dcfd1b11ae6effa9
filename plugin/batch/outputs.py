"""The audit's outputs: the part files of pass 2 and 3 streamed into findings and visits (CSV
and Parquet), batch findings folded into their visits, and the counters report.html needs.

The outputs hold patient data and text from the chart: each file is created private to its user
(0600) and a folder the audit creates is 0700; a CSV cell that a spreadsheet would run as a
formula (it starts with = + - @, a tab or a line break, after any spaces) gets a leading single
quote (OWASP, "CSV Injection"), numbers excepted."""

from __future__ import annotations

import csv
import heapq
import os
from collections import Counter, defaultdict
from pathlib import Path

from plugin.batch.passes import FINDING_FIELDS, SKIPPED, VISIT_FIELDS
from plugin.csv_safety import safe_cell
from plugin.domain import Severity

TOP_VISITS = 20
ROW_GROUP = 10_000  # rows per Parquet row group (held in memory until written)


def safe_row(row: dict) -> dict:
    return {k: safe_cell(v) for k, v in row.items()}


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose cells are neutralised with ``safe_cell``."""

    def writerow(self, rowdict):
        return super().writerow(safe_row(rowdict))

    def writerows(self, rowdicts):
        return super().writerows(safe_row(r) for r in rowdicts)


def private_file(path: Path) -> Path:
    """Create (or empty) ``path`` readable and writable by its owner only (0600), before any
    data goes in; an existing file is narrowed to 0600 too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return path


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) as 0700; a folder that already exists keeps its mode
    (it may be the user's own), its files are 0600 anyway."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)
    return path


def merge_outputs(scratch: Path, out: Path, buckets: int) -> dict:
    """Stream the part files into the outputs, fold batch findings into their visits, and
    count what the report needs (memory: counters and the top visits only)."""

    counts = {
        "visits": 0,  # therapy visits reviewed
        "skipped": 0,  # other encounters, listed with the verdict "skipped"
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
        private_file(out / "findings.csv").open("w", newline="", encoding="utf-8") as ffh,
        private_file(out / "visits.csv").open("w", newline="", encoding="utf-8") as vfh,
        ParquetRows(private_file(out / "findings.parquet"), FINDING_FIELDS) as findings_parquet,
        ParquetRows(private_file(out / "visits.parquet"), VISIT_FIELDS) as visits_parquet,
    ):
        findings_out = SafeDictWriter(ffh, FINDING_FIELDS, extrasaction="ignore")
        visits_out = SafeDictWriter(vfh, VISIT_FIELDS, extrasaction="ignore")
        findings_out.writeheader()
        visits_out.writeheader()

        def emit_findings(rows: list[dict]) -> None:
            if not rows:
                return
            findings_out.writerows(rows)
            for f in rows:
                dollars = float(f["dollars_at_risk"] or 0)
                therapist, month = f["therapist"] or "unknown", (f["date"] or "unknown")[:7]
                counts["findings"] += 1
                counts["by_rule"][f["rule"]] += 1
                counts["dollars_by_rule"][f["rule"]] += dollars
                counts["by_therapist"][therapist] += 1
                counts["by_month"][month] += 1
                counts["dollars_by_month"][month] += dollars
                counts["dollars_by_therapist"][therapist] += dollars
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
                    if visit["verdict"] == SKIPPED:
                        counts["skipped"] += 1
                        continue
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


def write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    """A private CSV (0600) with neutralised cells."""
    with private_file(path).open("w", newline="", encoding="utf-8") as fh:
        writer = SafeDictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
