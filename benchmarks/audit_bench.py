"""Audit throughput beside orjson's parse of the same NDJSON, precision and recall per injected
rule, 1 vs 2 Dask workers, and peak memory. Last line: ``audit/parse ratio: X.XX``.

--visits sets the size (the issue's target size is 100,000; default here 20,000)."""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.batch.audit import run_audit  # noqa: E402
from plugin.batch.synth import DEFECTS, generate  # noqa: E402


def parse_all(folder: Path) -> float:
    start = time.perf_counter()
    for path in folder.glob("*.ndjson"):
        with path.open("rb") as fh:
            for line in fh:
                orjson.loads(line)
    return time.perf_counter() - start


def timed_audit(folder: Path, out: Path, workers: int) -> float:
    import dask

    start = time.perf_counter()
    with dask.config.set(num_workers=workers):
        run_audit(folder, out, buckets=16, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data, out = Path(scratch) / "data", Path(scratch) / "out"
        generate(data, args.visits, 0.3, seed=11)
        parse_s = parse_all(data)
        one = timed_audit(data, out, 1)
        two = timed_audit(data, out, 2)
        truth = {(r["encounter"], r["rule"]) for r in csv.DictReader((data / "truth.csv").open())}
        found = {
            (r["encounter"], r["rule"])
            for r in csv.DictReader((out / "findings.csv").open())
            if r["rule"] in DEFECTS
        }
    tp = Counter(rule for _, rule in truth & found)
    for rule in sorted(DEFECTS):
        t = sum(1 for _, r in truth if r == rule)
        f = sum(1 for _, r in found if r == rule)
        print(
            f"{rule:30} recall {tp[rule] / t if t else 1:.1%}  precision "
            f"{tp[rule] / f if f else 1:.1%}  ({t} injected)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"visits {args.visits}: parse {parse_s:.1f} s, audit 1 worker {one:.1f} s "
        f"({args.visits / one:,.0f} visits/s), 2 workers {two:.1f} s "
        f"(speed-up {one / two:.2f}x); peak RSS parent {peak:.0f} MiB, worker {children:.0f} MiB"
    )
    print(f"audit/parse ratio: {two / parse_s:.2f}")


if __name__ == "__main__":
    main()
