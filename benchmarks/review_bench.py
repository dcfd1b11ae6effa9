"""Reviews per second in-process, beside the time to merely parse the same JSON with orjson.

Generates a few thousand realistic visit Bundles (history, notes, claims), serialises them,
then times, on the same data in one run: (a) orjson.loads of every Bundle, (b) the review of
every already-parsed Bundle (index, visit model, all rules). Best of several repeats each.
Targets (issue 22, pure Python): review/parse <= 6 and one typical visit under 1 ms after parsing.

Then the comparison a Python FHIR user would make: the whole review of a visit beside merely
parsing the same Bundle with fhir.resources (``Bundle.model_validate_json``, the R4B models),
timed on a sample of the Bundles (that parse is slow): target review <= a quarter of it.

Then the review's three phases, each timed alone over every Bundle (index every Bundle, then
build every visit, then run the rules on every visit), as multiples of the parse: where the
time goes. Last line: ``review/parse ratio: X.XX``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

import orjson
from fhir.resources.R4B.bundle import Bundle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.fhir.extract import build_visit  # noqa: E402
from plugin.fhir.index import index_bundle  # noqa: E402
from plugin.policy import load_policy  # noqa: E402
from plugin.review import review_bundle  # noqa: E402
from plugin.rules.engine import review  # noqa: E402
from plugin.synthetic.benchmark import benchmark_visit  # noqa: E402


def make_visit(rng: random.Random, n: int) -> bytes:
    return orjson.dumps(benchmark_visit(rng, n))


def best_of(repeats: int, fn) -> float:
    """Best wall time of several runs, with the cyclic GC off for both sides (as timeit does):
    otherwise the collector's passes over thousands of live parsed Bundles dominate the parse."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def phase_times(parsed: list, policy, repeats: int) -> dict[str, float]:
    """Best time of each phase of the review over all the Bundles, GC off as in ``best_of``.
    Each repeat indexes afresh: an index keeps what the visits built from it derived."""
    best = dict.fromkeys(("index", "build", "rules"), float("inf"))
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            indexes = [index_bundle(p) for p in parsed]
            indexed = time.perf_counter()
            visits = [build_visit(index, policy) for index in indexes]
            built = time.perf_counter()
            for visit in visits:
                review(visit, policy)
            done = time.perf_counter()
        finally:
            gc.enable()
        for phase, seconds in zip(
            best, (indexed - start, built - indexed, done - built), strict=True
        ):
            best[phase] = min(best[phase], seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--models-sample", type=int, default=300)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    raw = [make_visit(rng, n) for n in range(args.visits)]
    parsed = [orjson.loads(r) for r in raw]
    policy = load_policy()
    review_bundle(parsed[0], policy=policy)  # warm the phrase-regex cache

    parse_s = best_of(args.repeats, lambda: [orjson.loads(r) for r in raw])
    review_s = best_of(args.repeats, lambda: [review_bundle(p, policy=policy) for p in parsed])

    phases = phase_times(parsed, policy, args.repeats)
    sample = raw[: args.models_sample]
    models_s = best_of(args.repeats, lambda: [Bundle.model_validate_json(r) for r in sample])
    sample_review_s = best_of(
        args.repeats, lambda: [review_bundle(p, policy=policy) for p in parsed[: len(sample)]]
    )

    size = sum(len(r) for r in raw) / len(raw)
    per_visit_ms = review_s / args.visits * 1000
    print(f"visits: {args.visits}, mean Bundle size {size / 1024:.1f} KiB")
    print(f"parse (orjson.loads):  {parse_s:.3f} s  {args.visits / parse_s:,.0f} visits/s")
    print(
        f"review (after parse):  {review_s:.3f} s  {args.visits / review_s:,.0f} visits/s  "
        f"{per_visit_ms:.3f} ms/visit (target < 1 ms)"
    )
    print(
        f"fhir.resources parse (Bundle.model_validate_json, {len(sample)} Bundles): "
        f"{models_s / len(sample) * 1000:.3f} ms/visit; "
        f"review/fhir.resources parse: {sample_review_s / models_s:.3f} (target <= 0.25)"
    )
    print(
        "each phase alone, x parse: "
        + ", ".join(f"{phase} {seconds / parse_s:.2f}" for phase, seconds in phases.items())
    )
    print(f"review/parse ratio: {review_s / parse_s:.2f}")


if __name__ == "__main__":
    main()
