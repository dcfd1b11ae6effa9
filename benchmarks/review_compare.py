"""This tree's review beside an earlier commit's, on the very same Bundles, in one run.

``review_bench.py`` builds its Bundles with each tree's own ``plugin/synthetic/`` builders, so two
trees compared that way review different data. Here the Bundles are made once, by this tree, written
to a scratch file, and each tree (this one, and ``--against`` exported with ``git archive``)
reviews them in its own child process, the two sides taking turns round after round. Each side
reports its best time (GC off, as timeit does) to parse and to review; the last line is the
ratio of this tree's review time to the earlier commit's. ``--clock cpu`` times the process's
CPU time rather than the wall clock, for a machine other work keeps busy.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from review_bench import make_visit  # noqa: E402

CHILD = """
import gc, json, sys, time
import orjson
from plugin.policy import load_policy
from plugin.review import review_bundle

raw = open(sys.argv[1], "rb").read().splitlines()
repeats = int(sys.argv[2])
clock = time.process_time if sys.argv[3] == "cpu" else time.perf_counter
parsed = [orjson.loads(r) for r in raw]
policy = load_policy()
review_bundle(parsed[0], policy=policy)

def best(fn):
    out = float("inf")
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = clock()
            fn()
            out = min(out, clock() - start)
        finally:
            gc.enable()
    return out

parse = best(lambda: [orjson.loads(r) for r in raw])
review = best(lambda: [review_bundle(p, policy=policy) for p in parsed])
print(json.dumps({"parse": parse, "review": review}))
"""


def export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (its tracked files) in ``into``."""
    archive = subprocess.run(  # noqa: S603 - git with our own arguments
        ["git", "archive", "--format=tar", ref],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def side(tree: Path, bundles: Path, repeats: int, clock: str) -> dict:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", CHILD, str(bundles), str(repeats), clock],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--against", default="175f61e", help="the earlier commit (default: before issue 12)"
    )
    parser.add_argument("--visits", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side per round")
    parser.add_argument("--rounds", type=int, default=3, help="turns each side takes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: the process's CPU time, which other programs' load disturbs less",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        bundles = Path(scratch) / "bundles.ndjson"
        bundles.write_bytes(b"\n".join(make_visit(rng, n) for n in range(args.visits)))
        earlier = export(args.against, Path(scratch) / "earlier")
        sides = [(args.against, earlier), ("this tree", ROOT)]
        best = {name: {"parse": 1e9, "review": 1e9} for name, _ in sides}
        for _ in range(args.rounds):
            for name, tree in sides:
                got = side(tree, bundles, args.repeats, args.clock)
                for key in ("parse", "review"):
                    best[name][key] = min(best[name][key], got[key])
    print(
        f"{args.visits} visits made by this tree, reviewed by both, "
        f"best of {args.rounds} x {args.repeats}, {args.clock} clock"
    )
    for name, got in best.items():
        print(
            f"{name:>12}: review {got['review'] / args.visits * 1000:.3f} ms/visit, "
            f"parse {got['parse'] / args.visits * 1000:.3f} ms/visit, "
            f"review/parse {got['review'] / got['parse']:.2f}"
        )
    ratio = best["this tree"]["review"] / best[args.against]["review"]
    print(f"review time, this tree / {args.against}: {ratio:.2f}")


if __name__ == "__main__":
    main()
