"""Write a realistic mixed export (Synthea-shaped: wellness, ambulatory, urgent-care, emergency
and inpatient encounters with vitals, labs, Conditions, notes and non-therapy Claims, plus clean
outpatient PT/OT episodes for about two patients in five) as FHIR Bulk NDJSON.

    python benchmarks/mixed_export.py --out /tmp/mixed [--patients 60] [--seed 1] [--binary-notes]

therapy.csv lists the therapy encounters an audit should review; the others should be skipped.
The generator is plugin.batch.mixed (the tests use it too)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugin.batch.mixed import generate_mixed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--binary-notes", action="store_true", help="note text in Binary.ndjson, as Epic exports"
    )
    args = parser.parse_args()
    if args.out.exists() and any(args.out.glob("*.ndjson")):
        parser.error(f"{args.out}: already holds NDJSON; give an empty or new folder")
    start = time.perf_counter()
    counts = generate_mixed(args.out, args.patients, args.seed, args.binary_notes)
    megabytes = sum(p.stat().st_size for p in args.out.glob("*.ndjson")) / 2**20
    print(  # noqa: T201 - the script's output
        f"{counts['patients']} patients, {counts['encounters']:,} encounters "
        f"({counts['therapy_visits']:,} therapy visits), {counts['resources']:,} resources, "
        f"{megabytes:.1f} MiB NDJSON in {time.perf_counter() - start:.1f} s into {args.out}"
    )


if __name__ == "__main__":
    main()
