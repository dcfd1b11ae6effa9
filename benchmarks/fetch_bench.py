"""Time fetch_visit against the sandbox EHR on loopback, per profile: rounds, requests, ms.

Runs the sandbox in-process on an ephemeral port (open access, fixtures loaded) and fetches one
visit many times. Last line: ``fetch_visit median ms (full/epic/oracle): a/b/c``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.ehr import FetchStats, fetch_visit  # noqa: E402
from smart_launch import FhirClient, make_session  # noqa: E402
from tests.loopback import running_sandbox  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    medians = []
    for profile, encounter in (
        ("full", "kx-missing-enc-1"),
        ("epic", "kx-missing-enc-1"),
        ("oracle", "oracle-chargeitem-enc-1"),
    ):
        with running_sandbox(profile, open_access=True) as ehr:
            client = FhirClient(ehr.fhir, session=make_session())
            times, stats = [], FetchStats()
            for _ in range(args.repeats):
                stats = FetchStats()
                start = time.perf_counter()
                fetch_visit(client, encounter, stats=stats)
                times.append((time.perf_counter() - start) * 1000)
        median = statistics.median(times)
        medians.append(median)
        print(
            f"{profile:6} rounds {stats.rounds}  requests {stats.requests}  "
            f"median {median:.1f} ms  p95 {sorted(times)[int(len(times) * 0.95) - 1]:.1f} ms"
        )
    print("fetch_visit median ms (full/epic/oracle): " + "/".join(f"{m:.1f}" for m in medians))


if __name__ == "__main__":
    main()
