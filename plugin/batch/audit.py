"""The audit: every therapy visit in a folder of NDJSON reviewed with the same engine as
``review``, plus the rules only a batch can see, on Dask, in memory that does not grow with the
data. Encounters that are not therapy visits (wellness, emergency, inpatient; see
``plugin.fhir.therapy``) are not reviewed: visits.csv lists them with the verdict "skipped" so
every encounter of the export is accounted for, and the report counts them apart.

``run_audit`` runs the three passes of ``plugin.batch.passes`` on one pool of worker processes
(or a Dask cluster, or in this process), then ``plugin.batch.outputs`` writes the results. The
number of buckets grows with the input's size, so each task holds a bounded share.
"""

from __future__ import annotations

import os
import sys
import tempfile
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from plugin.batch.cluster import check_workers, connected
from plugin.batch.ndjson import BadLine
from plugin.batch.outputs import merge_outputs, private_folder, write_csv
from plugin.batch.passes import (
    audit_bucket,
    audit_therapists,
    join_binaries,
    line_numbers,
    route_slice,
    slices,
)
from plugin.errors import InputError, PluginError

ERROR_FIELDS = ("file", "line", "problem")
BUCKET_BYTES = 3 << 20  # pass 2 buckets hold about this much NDJSON each


class AuditFailed(PluginError):
    """The audit could not finish (a worker died); the message says what to try."""


@dataclass
class AuditResult:
    visits: int  # therapy visits reviewed
    findings: int
    bad_lines: list[BadLine]
    out: Path
    batch_findings: int = 0
    summary: dict = field(default_factory=dict)
    skipped: int = 0  # other encounters, listed in visits.csv as "skipped", not reviewed


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

    # Absolute before anything leaves this process: a cluster's workers run elsewhere.
    source = source.resolve()
    files = sorted(source.glob("*.ndjson"))
    if not files:
        raise InputError(f"{source}: no *.ndjson files (expected FHIR Bulk Data output)")
    private_folder(out)
    total = sum(p.stat().st_size for p in files)
    buckets = max(buckets or 16, -(-total // BUCKET_BYTES))
    therapist_buckets = max(1, buckets // 4)
    jobs = slices(files)

    pool = None
    client = None

    def compute(bag, label: str):
        nonlocal pool
        if progress:
            print(label, file=sys.stderr, flush=True)  # noqa: T201 - the progress display
        if scheduler in ("sync", "synchronous"):
            return bag.compute(scheduler="sync")
        if client is not None:
            from distributed import progress as cluster_progress

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
    scratch_root = os.environ.get("UNITGUARD_SCRATCH") or None
    if scratch_root:
        scratch_root = str(Path(scratch_root).resolve())
    with ExitStack() as stack:
        tmp = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="unitguard-audit-", dir=scratch_root)
        )
        scratch = Path(tmp).resolve()
        if scheduler and scheduler not in ("sync", "synchronous"):
            client = stack.enter_context(connected(scheduler))
            check_workers(client, source, files, scratch)
        try:
            routed = db.from_sequence(list(enumerate(jobs)), npartitions=len(jobs)).map(
                lambda item: route_slice(item[1], item[0], scratch, buckets)
            )
            bad_offsets = [
                b for part in compute(routed, "1/3 reading and routing by patient") for b in part
            ]
            joins = sorted({int(p.name[1:6]) for p in scratch.glob("m*-*.ndjson")})
            if joins:  # note Binaries that name no patient: to their DocumentReference's patient
                joined = db.from_sequence(joins, npartitions=len(joins)).map(
                    join_binaries, scratch=scratch
                )
                compute(joined, "1/3 routing note Binaries to their patients")
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
        bad = line_numbers(bad_offsets, source) + [
            BadLine(name, line, problem) for name, line, problem in problems
        ]
        summary = merge_outputs(scratch, out, buckets)
    write_csv(out / "errors.csv", ERROR_FIELDS, [b.__dict__ for b in bad])
    from plugin.batch.report import write_report

    write_report(out / "report.html", summary, len(bad))
    return AuditResult(
        summary["visits"],
        summary["findings"],
        bad,
        out,
        batch_findings,
        summary,
        summary["skipped"],
    )
