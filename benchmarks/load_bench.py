"""Bounded load test on loopback: 20 concurrent users against the app, which reads from the
sandbox EHR. Each user launches once (a real SMART EHR launch), then loads its review page
repeatedly; a second phase posts CDS Hooks calls with signed JWTs and prefetched visits.
Prints requests per second, p50/p95 latency and errors for each phase. Bounded in requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joserfc import jwt  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

from plugin.serving import bind, running  # noqa: E402
from plugin.web import create_app  # noqa: E402
from plugin.web.cds_hooks import CdsClient, create_cds_blueprint  # noqa: E402
from plugin.web.settings import Settings  # noqa: E402
from sandbox.testing import running_sandbox  # noqa: E402
from smart_launch import Registry  # noqa: E402
from smart_launch.registry import RegisteredEhr  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VISITS = [
    "units-exceed-enc-1",
    "kx-missing-enc-1",
    "doc-weak-narrative-enc-1",
    "minutes-overlap-enc-1",
    "clean-97112-97110-enc-1",
]


def summary(name: str, latencies: list[float], errors: int, elapsed: float) -> str:
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    return (
        f"{name}: {len(latencies)} requests, {len(latencies) / elapsed:.0f} req/s, "
        f"p50 {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms, errors {errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="per user and phase")
    parser.add_argument(
        "--visit-cache-seconds", type=int, default=60, help="0 re-reads the visit on every page"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    key = RSAKey.generate_key(2048, parameters={"kid": "ehr"})
    with running_sandbox("full") as ehr:
        registry = Registry(
            (
                RegisteredEhr(
                    name="sandbox",
                    issuer=ehr.fhir,
                    client_id="unitguard",
                    scopes=("launch", "openid", "fhirUser", "patient/*.rs", "user/Task.cu"),
                ),
            )
        )
        server = bind("127.0.0.1", 0, lambda environ, start_response: [])
        base = f"http://127.0.0.1:{server.server_port}"
        settings = Settings(
            testing=True,
            public_url=base,  # the redirect URI comes from it, never from the Host header
            task_db="sqlite://",
            outbox_db="sqlite://",
            session_db="sqlite://",
            rate_limits=False,  # this measures capacity, not the per-client limits
            visit_cache_seconds=args.visit_cache_seconds,
        ).validated()
        app = server.app = create_app(settings, registry=registry)
        app.register_blueprint(
            create_cds_blueprint(
                [CdsClient("https://ehr.load/cds", {"keys": [key.as_dict(private=False)]})], base
            ),
            name="cds_load",
            url_prefix="/load-cds-services",
        )
        ehr.register("unitguard", f"{base}/callback")
        ehr.sandbox.app_launch_url = f"{base}/launch"
        with running([server]):

            def user(n: int) -> tuple[list[float], int]:
                browser = requests.Session()
                visit = VISITS[n % len(VISITS)]
                frame = browser.get(f"{ehr.base_url}/chart/launch/{visit}").text
                src = re.search(r'src="([^"]+)"', frame).group(1).replace("&amp;", "&")
                review_url = browser.get(src, timeout=30).url
                times, errors = [], 0
                for _ in range(args.requests):
                    start = time.perf_counter()
                    page = browser.get(review_url, timeout=30)
                    times.append((time.perf_counter() - start) * 1000)
                    errors += (not page.ok) or ("data-verdict" not in page.text)
                return times, errors

            def cds_user(n: int) -> tuple[list[float], int]:
                name = VISITS[n % len(VISITS)].removesuffix("-enc-1").replace("-", "_")
                bundle = json.loads((FIXTURES / f"{name}.json").read_text())
                service = "unitguard-encounter-discharge"
                times, errors = [], 0
                for _ in range(args.requests):
                    token = jwt.encode(
                        {"alg": "RS384", "kid": "ehr"},
                        {
                            "iss": "https://ehr.load/cds",
                            "aud": f"{base}/cds-services/{service}",
                            "iat": int(time.time()),
                            "exp": int(time.time()) + 60,
                            "jti": uuid.uuid4().hex,
                        },
                        key,
                        algorithms=["RS384"],
                    )
                    body = {
                        "hook": "encounter-discharge",
                        "hookInstance": uuid.uuid4().hex,
                        "context": {"encounterId": VISITS[n % len(VISITS)]},
                        "prefetch": {"all": bundle},
                    }
                    start = time.perf_counter()
                    resp = requests.post(
                        f"{base}/load-cds-services/{service}",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=30,
                    )
                    times.append((time.perf_counter() - start) * 1000)
                    errors += not resp.ok
                return times, errors

            for name, fn in (("review pages", user), ("CDS Hooks", cds_user)):
                start = time.perf_counter()
                with ThreadPoolExecutor(args.users) as pool:
                    results = list(pool.map(fn, range(args.users)))
                elapsed = time.perf_counter() - start
                latencies = [t for times, _ in results for t in times]
                print(summary(name, latencies, sum(e for _, e in results), elapsed))


if __name__ == "__main__":
    main()
