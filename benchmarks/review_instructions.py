"""Machine instructions and L1 data-cache misses per review, this tree beside an earlier commit.

Wall and CPU time on a shared machine move by 30% from run to run; the count of instructions
a review executes does not. Under valgrind's cachegrind (Debian package ``valgrind``), each
tree reviews the same Bundles (made by this tree's ``review_bench.make_visit``) twice in one
process: a first pass warms what a long-running process keeps (compiled regular expressions,
the PTP edits per date), the second is counted. The same run without the second pass is
subtracted, leaving the instructions and simulated L1 data misses of one review pass.

A review's time follows its instructions and, for these small scattered JSON objects, its L1
misses; the last line gives both ratios (this tree / the earlier commit). About 20 s per 100
visits and tree.

    python benchmarks/review_instructions.py --against 175f61e --visits 150
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from review_bench import make_visit  # noqa: E402
from review_compare import export  # noqa: E402

CHILD = """
import gc, sys, orjson
gc.disable()  # as review_bench times it; collections would land at different points
from plugin.policy import load_policy
from plugin.review import review_bundle
raws = open(sys.argv[1], "rb").read().splitlines()
policy = load_policy()
for raw in raws:
    review_bundle(orjson.loads(raw), policy=policy)
parsed = [orjson.loads(raw) for raw in raws]
if sys.argv[2] == "review":
    for bundle in parsed:
        review_bundle(bundle, policy=policy)
"""

COUNTS = {"instructions": r"I\s+refs:\s+([\d,]+)", "L1 data misses": r"D1\s+misses:\s+([\d,]+)"}


def counted(tree: Path, bundles: Path, mode: str) -> dict[str, int]:
    # One hash seed for every run, so both runs of a tree execute the same instructions.
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"}
    done = subprocess.run(  # noqa: S603 - valgrind on our own interpreter and code
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=yes",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            CHILD,
            str(bundles),
            mode,
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for name, pattern in COUNTS.items():
        match = re.search(pattern, done.stderr)
        if not match:
            raise SystemExit(f"valgrind printed no {name!r} count:\n{done.stderr[-800:]}")
        found[name] = int(match.group(1).replace(",", ""))
    return found


def per_visit(tree: Path, bundles: Path, visits: int) -> dict[str, float]:
    # Byte-compile first: otherwise the first run alone pays for compiling the tree's modules.
    subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "compileall", "-q", str(tree / "plugin")], check=True
    )
    setup, full = counted(tree, bundles, "setup"), counted(tree, bundles, "review")
    return {name: (full[name] - setup[name]) / visits for name in COUNTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="175f61e", help="the earlier commit")
    parser.add_argument("--visits", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        bundles = Path(scratch) / "bundles.ndjson"
        bundles.write_bytes(b"\n".join(make_visit(rng, n) for n in range(args.visits)))
        earlier = export(args.against, Path(scratch) / "earlier")
        results = {
            args.against: per_visit(earlier, bundles, args.visits),
            "this tree": per_visit(ROOT, bundles, args.visits),
        }
    print(f"{args.visits} visits made by this tree, one review pass each, under cachegrind")
    for name, got in results.items():
        print(
            f"{name:>12}: {got['instructions'] / 1e6:.3f} M instructions, "
            f"{got['L1 data misses']:,.0f} L1 data misses per visit"
        )
    theirs, mine = results[args.against], results["this tree"]
    print(
        f"this tree / {args.against}: instructions "
        f"{mine['instructions'] / theirs['instructions']:.2f}, L1 data misses "
        f"{mine['L1 data misses'] / theirs['L1 data misses']:.2f}"
    )


if __name__ == "__main__":
    main()
