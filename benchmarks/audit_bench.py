"""Audit throughput beside orjson's parse of the same NDJSON, 1 vs 2 Dask workers, peak memory
at N/10 and N visits (each audit in its own process, so peaks are its own), and precision and
recall per injected rule. Last line: ``audit/parse ratio: X.XX`` (2 workers).

--visits sets N (the issue's size is 100,000, the default); --visits 2000 runs in seconds."""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugin.batch.synth import DEFECTS, generate  # noqa: E402


def parse_all(folder: Path) -> float:
    """Best of 3: read and parse every line with orjson, nothing else."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for path in folder.glob("*.ndjson"):
            with path.open("rb") as fh:
                for line in fh:
                    orjson.loads(line)
        best = min(best, time.perf_counter() - start)
    return best


def audit_once(folder: Path, out: Path, workers: int) -> dict:
    """Run one audit in a child process; its wall time and its own peak memory."""
    code = (
        "import dask, json, resource, sys, time; from pathlib import Path;"
        "from plugin.batch.audit import run_audit;"
        "t = time.perf_counter();"
        f"dask.config.set(num_workers={workers});"
        f"r = run_audit(Path({str(folder)!r}), Path({str(out)!r}), progress=False);"
        "s = time.perf_counter() - t;"
        "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024;"
        "print(json.dumps({'seconds': s, 'visits': r.visits, 'parent_mib': me,"
        " 'worker_mib': kids}))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def precision_recall(data: Path, out: Path) -> None:
    with (data / "truth.csv").open() as fh:
        truth = {(r["encounter"], r["rule"]) for r in csv.DictReader(fh)}
    with (out / "findings.csv").open() as fh:
        found = {(r["encounter"], r["rule"]) for r in csv.DictReader(fh) if r["rule"] in DEFECTS}
    hits = Counter(rule for _, rule in truth & found)
    for rule in sorted(DEFECTS):
        injected = sum(1 for _, r in truth if r == rule)
        flagged = sum(1 for _, r in found if r == rule)
        print(
            f"  {rule:28} recall {hits[rule] / injected if injected else 1:7.1%}  precision "
            f"{hits[rule] / flagged if flagged else 1:7.1%}  ({injected} visits injected)"
        )


def long_histories(folder: Path, patients: int, visits_each: int) -> None:
    """Patients with a plan of care each (every third day), to price a visit's history."""
    from datetime import date, timedelta

    from plugin.batch.synth import SLOTS_PER_DAY, assign_team, shift_times
    from plugin.synthetic.ids import unique_ids
    from plugin.synthetic.visit import clean_visit

    folder.mkdir(parents=True)
    files: dict[str, object] = {}
    try:
        for p in range(patients):
            for v in range(visits_each):
                day = (date(2026, 1, 5) + timedelta(days=3 * v)).isoformat()
                prefix = f"h{p}v{v}"
                text = orjson.dumps(unique_ids(clean_visit(day=day).bundle(), prefix))
                text = text.replace(f"{prefix}-pat-1".encode(), f"h{p}-pat".encode())
                team, hour = divmod(p, SLOTS_PER_DAY)  # one patient per team and hour
                for entry in orjson.loads(text)["entry"]:
                    r = entry["resource"]
                    if r["resourceType"] == "Patient" and v:
                        continue
                    if r["resourceType"] == "Practitioner":
                        if hour or v:
                            continue
                        r = {**r, "id": f"{r['id']}-t{team}"}
                    line = assign_team(orjson.dumps(shift_times(r, hour - 2)), team)
                    if r["resourceType"] not in files:
                        files[r["resourceType"]] = (folder / f"{r['resourceType']}.ndjson").open(
                            "wb"
                        )
                    files[r["resourceType"]].write(line + b"\n")
    finally:
        for fh in files.values():
            fh.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=100_000)
    args = parser.parse_args()
    big = args.visits
    small = max(big // 10, 100)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        sizes = {}
        for n in (small, big):
            data = root / f"data-{n}"
            t = time.perf_counter()
            generate(data, n, 0.3, seed=11)
            megabytes = sum(p.stat().st_size for p in data.glob("*.ndjson")) / 2**20
            took = time.perf_counter() - t
            print(f"synth {n:,} visits: {megabytes:,.0f} MiB NDJSON in {took:.0f} s")
            sizes[n] = data
        memory = {n: audit_once(sizes[n], root / f"out-{n}", 2) for n in (small, big)}
        data, out = sizes[big], root / f"out-{big}"
        parse_s = parse_all(data)
        one = audit_once(data, root / "out-1", 1)
        two = memory[big]
        print(f"precision and recall per injected rule ({big:,} visits):")
        precision_recall(data, out)
        history = root / "history"
        long_histories(history, patients=max(big // 50, 10), visits_each=20)
        histories = audit_once(history, root / "out-history", 2)
        history_parse = parse_all(history)
    for n in (small, big):
        m = memory[n]
        print(
            f"peak memory at {n:,} visits: parent {m['parent_mib']:.0f} MiB, "
            f"largest worker {m['worker_mib']:.0f} MiB"
        )
    growth = max(memory[big]["parent_mib"], memory[big]["worker_mib"]) / max(
        memory[small]["parent_mib"], memory[small]["worker_mib"]
    )
    print(f"peak memory growth for 10x the visits: {growth:.2f}x")
    print(
        f"{big:,} visits: parse {parse_s:.2f} s ({big / parse_s:,.0f} visits/s); audit 1 worker "
        f"{one['seconds']:.1f} s ({big / one['seconds']:,.0f} visits/s); 2 workers "
        f"{two['seconds']:.1f} s ({big / two['seconds']:,.0f} visits/s); "
        f"speed-up {one['seconds'] / two['seconds']:.2f}x"
    )
    print(
        f"{histories['visits']:,} visits of patients with 20 visits each: 2 workers "
        f"{histories['seconds']:.1f} s ({histories['visits'] / histories['seconds']:,.0f} "
        f"visits/s); audit/parse {histories['seconds'] / history_parse:.2f}"
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this benchmark process itself peaked at {own:.0f} MiB generating the data)")
    print(f"audit/parse ratio: {two['seconds'] / parse_s:.2f}")


if __name__ == "__main__":
    main()
