"""Import time and peak memory of CMS's files at full size, in the layouts CMS publishes.

Generates, in a temporary folder, files shaped like CMS's downloads (made-up codes and values,
real preambles and headers): a practitioner PTP zip of four tab-delimited files (--ptp rows in
all, 1.2 M by default), a practitioner MUE CSV (--mue rows, 15k) and an RVU zip (PPRRVU CSV of
--rvu rows, 19k, with a GPCI file of 109 localities). Each import runs in its own process
(the CLI's code path: plugin.policy.*), so its peak resident memory is its own; the baseline
line is a process that only imports the modules. Prints one line per import: rows read, rows
kept, seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PTP_HEADER = (
    "CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t\r\n"
    "Column1/Column2 Edits\t\t\t\t\t\t\r\n"
    "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\r\n"
    "\t\tprior to 1996\tDate\tDate\t0=not allowed\t\r\n"
    "\t\t\t\t*=no data\t1=allowed\t\r\n"
    "\t\t\t\t\t9=not applicable\t\r\n"
)
MUE_HEADER = (
    '"Current Procedural Terminology (CPT) codes, descriptions and other data only are '
    'copyright 2025 American Medical Association. All rights reserved.",,,\r\n'
    '"HCPCS/\r\nCPT Code",Practitioner Services MUE Values,MUE Adjudication Indicator,'
    "MUE Rationale\r\n"
)
RVU_SAMPLE = ROOT / "tests" / "data" / "cms" / "PPRRVU2025_Oct.excerpt.csv"
GPCI_SAMPLE = ROOT / "tests" / "data" / "cms" / "GPCI2025.excerpt.csv"


def codes(rng: random.Random, n: int) -> list[str]:
    """n distinct five-character codes, a few hundred of them therapy codes (97xxx, 92xxx)."""
    found = {f"97{k:03d}" for k in range(0, 800, 3)} | {f"92{k:03d}" for k in range(500, 620)}
    while len(found) < n:
        found.add(
            f"{rng.randint(10000, 99999)}" if rng.random() < 0.8 else f"{rng.randint(1, 9999):04d}T"
        )
    return sorted(found)[:n]


def ptp_zip(folder: Path, rows: int, rng: random.Random) -> Path:
    pool = codes(rng, 12000)
    path = folder / "medicare-ncci-2026q1-practitioner-ptp-edits.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in range(4):
            out = io.StringIO()
            out.write(PTP_HEADER)
            for _ in range(rows // 4):
                one, two = rng.sample(pool, 2)
                deletion = "*" if rng.random() < 0.7 else f"20{rng.randint(10, 25)}1231"
                out.write(
                    f"{one}\t{two}\t\t20{rng.randint(10, 26)}0101\t{deletion}\t"
                    f"{rng.choice('019')}\tMutually exclusive procedures\r\n"
                )
            archive.writestr(f"ccipra-v321r0-f{part + 1}.txt", out.getvalue())
    return path


def mue_csv(folder: Path, rows: int, rng: random.Random) -> Path:
    path = folder / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(MUE_HEADER)
        for code in codes(rng, rows):
            mai = rng.choice(["1 Line Edit", "2 Date of Service Edit: Policy",
                              "3 Date of Service Edit: Clinical"])  # fmt: skip
            fh.write(f"{code},{rng.randint(1, 12)},{mai},Clinical: Data\r\n")
    return path


def rvu_zip(folder: Path, rows: int, rng: random.Random) -> Path:
    lines = RVU_SAMPLE.read_text(encoding="utf-8").splitlines()
    header, sample = lines[:10], lines[10].split(",")
    out = io.StringIO()
    out.write("\r\n".join(header) + "\r\n")
    for code in codes(rng, rows):
        cells = list(sample)
        cells[0], cells[2], cells[3] = code, "(descriptor omitted)", rng.choice("AAAABINCR")
        cells[5], cells[6] = f"{rng.random() * 3:.2f}", f"{rng.random() * 2:.2f}"
        out.write(",".join(cells) + "\r\n")
    path = folder / "RVU26A.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PPRRVU26_JAN.csv", out.getvalue())
        archive.writestr("GPCI2026.csv", GPCI_SAMPLE.read_bytes())
    return path


CHILD = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
sys.path.insert(0, {root!r})
from plugin.policy.mpfs_file import import_mpfs_file
from plugin.policy.mue_file import import_mue_file
from plugin.policy.ncci import import_ptp_file
kind, source, into = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
start = time.perf_counter()
if kind == "ptp":
    r = import_ptp_file(source, into)
    rows = (r.read, r.kept)
elif kind == "mue":
    r = import_mue_file(source, into)
    rows = (r.read, r.kept)
elif kind == "mpfs":
    r = import_mpfs_file(source, into, locality="10112-00")
    rows = (r.read, r.kept)
else:
    rows = (0, 0)
seconds = time.perf_counter() - start
print(json.dumps({{"rows": rows, "seconds": seconds,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run(kind: str, source: Path, into: Path) -> dict:
    code = CHILD.format(root=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code, kind, str(source), str(into)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ptp", type=int, default=1_200_000)
    parser.add_argument("--mue", type=int, default=15_000)
    parser.add_argument("--rvu", type=int, default=19_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--make", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:  # in a process of its own, so the measuring parent stays small
        rng, folder = random.Random(args.seed), Path(args.make)
        (
            ptp_zip(folder, args.ptp, rng),
            mue_csv(folder, args.mue, rng),
            rvu_zip(folder, args.rvu, rng),
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = [f"--{k}={getattr(args, k)}" for k in ("ptp", "mue", "rvu", "seed")]
        subprocess.run([sys.executable, __file__, "--make", tmp, *sizes], check=True)
        files = {
            "ptp": folder / "medicare-ncci-2026q1-practitioner-ptp-edits.zip",
            "mue": folder / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv",
            "mpfs": folder / "RVU26A.zip",
        }
        base = run("baseline", folder, folder / "policy")
        print(f"baseline (interpreter and modules only): peak {base['peak_mib']:.0f} MiB")
        for kind, source in files.items():
            found = run(kind, source, folder / "policy")
            read, kept = found["rows"]
            size = source.stat().st_size / 2**20
            print(
                f"import {kind:4}: {source.name} ({size:.1f} MiB): {read:,} rows read, "
                f"{kept:,} kept, {found['seconds']:.2f} s, peak {found['peak_mib']:.0f} MiB"
            )


if __name__ == "__main__":
    main()
