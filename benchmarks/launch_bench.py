"""Time from the EHR's launch request to the rendered review page, on loopback.

Starts the sandbox EHR and the app in-process on ephemeral ports; each run follows the whole
SMART EHR launch (app /launch -> authorize -> /callback -> /review with fetch_visit and the
review) with a fresh browser session. Last line: ``launch->review median ms: X``.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.loopback import running_sandbox  # noqa: E402
from tests.sandbox.test_end_to_end import app_against  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--profile", default="full", choices=["full", "epic", "oracle"])
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    times = []
    with running_sandbox(args.profile) as ehr, app_against(ehr):
        for _ in range(args.runs):
            browser = requests.Session()
            frame = browser.get(f"{ehr.base_url}/chart/launch/units-exceed-enc-1").text
            src = re.search(r'src="([^"]+)"', frame).group(1).replace("&amp;", "&")
            start = time.perf_counter()
            page = browser.get(src, timeout=30)
            times.append((time.perf_counter() - start) * 1000)
            assert page.ok and "data-verdict" in page.text
    times.sort()
    print(
        f"runs {args.runs} ({args.profile} profile): median {statistics.median(times):.0f} ms, "
        f"p95 {times[int(len(times) * 0.95) - 1]:.0f} ms, max {times[-1]:.0f} ms"
    )
    print(f"launch->review median ms: {statistics.median(times):.0f}")


if __name__ == "__main__":
    main()
