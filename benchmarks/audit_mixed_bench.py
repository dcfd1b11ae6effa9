"""The audit on an organisation's mixed export beside the therapy-only synthetic data, in one
run: therapy visits reviewed, other encounters skipped, and throughput (therapy visits/s and
all encounters/s) with 1 and 2 Dask workers; the mixed export once more with its notes in
Binary.ndjson (the join of Binaries to their patients); each audit in its own process.

--patients sets the mixed export's size (60 patients, about 6,600 encounters, by default);
the therapy-only data (`unitguard synth`, plugin.batch.synth.generate) has as many visits as the
mixed export has encounters unless --synth-visits says otherwise."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugin.batch.mixed import generate_mixed  # noqa: E402
from plugin.batch.synth import generate  # noqa: E402


def audit_once(folder: Path, out: Path, workers: int) -> dict:
    """One audit in a child process: wall time, CPU time (its own and its workers', which a
    busy machine does not inflate as it does the wall time), reviewed and skipped, its workers'
    peak memory."""
    code = (
        "import dask, json, resource, time; from pathlib import Path;"
        "from plugin.batch.audit import run_audit;"
        "t = time.perf_counter();"
        f"dask.config.set(num_workers={workers});"
        f"r = run_audit(Path({str(folder)!r}), Path({str(out)!r}), progress=False);"
        "s = time.perf_counter() - t;"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "me = resource.getrusage(resource.RUSAGE_SELF);"
        "cpu = kids.ru_utime + kids.ru_stime + me.ru_utime + me.ru_stime;"
        "print(json.dumps({'seconds': s, 'visits': r.visits, 'skipped': r.skipped,"
        " 'findings': r.findings, 'worker_mib': kids.ru_maxrss / 1024, 'cpu': cpu}))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.ndjson")) / 2**20


def reviewed(out: Path) -> set[str]:
    with (out / "visits.csv").open() as fh:
        return {r["encounter"] for r in csv.DictReader(fh) if r["verdict"] != "skipped"}


def findings(out: Path) -> list[tuple]:
    with (out / "findings.csv").open() as fh:
        return sorted(tuple(r.values()) for r in csv.DictReader(fh))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--synth-visits", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        mixed, binary, synth = root / "mixed", root / "mixed-binary", root / "synth"
        t = time.perf_counter()
        counts = generate_mixed(mixed, args.patients, args.seed)
        generate_mixed(binary, args.patients, args.seed, binary_notes=True)
        print(
            f"mixed export: {counts['patients']} patients, {counts['encounters']:,} encounters "
            f"({counts['therapy_visits']:,} therapy visits), {mib(mixed):.1f} MiB NDJSON "
            f"({mib(binary):.1f} MiB with notes in Binary.ndjson), made in "
            f"{time.perf_counter() - t:.1f} s"
        )
        synth_visits = args.synth_visits or counts["encounters"]
        generate(synth, synth_visits, 0.2, seed=args.seed)
        print(f"therapy-only synth: {synth_visits:,} visits, {mib(synth):.1f} MiB NDJSON")
        runs = [
            ("mixed", mixed, 1),
            ("mixed", mixed, 2),
            ("mixed, notes in Binary", binary, 2),
            ("therapy-only synth", synth, 1),
            ("therapy-only synth", synth, 2),
        ]
        results = []
        for n, (label, folder, workers) in enumerate(runs):
            out = root / f"out-{n}"
            results.append((label, workers, out, audit_once(folder, out, workers)))
        with (mixed / "therapy.csv").open() as fh:
            therapy = {r["encounter"] for r in csv.DictReader(fh)}
        exact = reviewed(results[0][2]) == therapy
        same = findings(results[2][2]) == findings(results[1][2])
        print(
            f"{'audit':24} {'workers':>7} {'reviewed':>9} {'skipped':>8} {'findings':>9} "
            f"{'seconds':>8} {'therapy visits/s':>17} {'encounters/s':>13} {'CPU s':>6} "
            f"{'encounters/CPU s':>17} {'worker MiB':>11}"
        )
        for label, workers, _, r in results:
            encounters = r["visits"] + r["skipped"]
            print(
                f"{label:24} {workers:>7} {r['visits']:>9,} {r['skipped']:>8,} "
                f"{r['findings']:>9,} {r['seconds']:>8.1f} {r['visits'] / r['seconds']:>17,.0f} "
                f"{encounters / r['seconds']:>13,.0f} {r['cpu']:>6.1f} "
                f"{encounters / r['cpu']:>17,.0f} {r['worker_mib']:>11.0f}"
            )
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores")
        print(
            f"mixed: reviewed exactly the {len(therapy):,} therapy encounters of therapy.csv: "
            f"{exact}; notes in Binary.ndjson give the same findings: {same}"
        )


if __name__ == "__main__":
    main()
