"""Bounded load test on loopback: `unitguard serve` under gunicorn (4 workers by default)
reading from the sandbox EHR, with 20 concurrent users. Each user launches once (a real SMART
EHR launch), then loads its review page repeatedly; a second phase posts CDS Hooks calls with
signed JWTs and prefetched visits. A third phase holds 300 connections open that send nothing
while a client keeps getting /healthz. Prints requests per second, p50/p95 latency and errors
for each phase, the slowest /healthz, and the server's threads. Bounded in requests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from joserfc import jwt  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

from tests.loopback import running_sandbox  # noqa: E402

FIXTURES = ROOT / "fixtures"
VISITS = [
    "units-exceed-enc-1",
    "kx-missing-enc-1",
    "doc-weak-narrative-enc-1",
    "minutes-overlap-enc-1",
    "clean-97112-97110-enc-1",
]
CDS_ISSUER = "https://ehr.load/cds"
SERVICE = "unitguard-encounter-discharge"


def summary(name: str, latencies: list[float], errors: int, elapsed: float) -> str:
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    return (
        f"{name}: {len(latencies)} requests, {len(latencies) / elapsed:.0f} req/s, "
        f"p50 {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms, errors {errors}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_threads(pid: int) -> int:
    """Threads of the gunicorn master and its workers."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        status = Path(f"/proc/{p}/status")
        if status.exists():
            total += int(re.search(r"Threads:\s+(\d+)", status.read_text()).group(1))
    return total


def start_serve(port: int, ehr_fhir: str, workdir: Path, key: RSAKey, args) -> subprocess.Popen:
    jwks = workdir / "cds-jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    ehrs = workdir / "ehrs.toml"
    ehrs.write_text(
        f'[[ehr]]\nname = "sandbox"\nissuer = "{ehr_fhir}"\nclient_id = "unitguard"\n'
        'scopes = ["launch", "openid", "fhirUser", "patient/*.rs", "user/Task.cu"]\n'
        f'[ehr.quirks]\ncds_issuer = "{CDS_ISSUER}"\ncds_jwks_file = "{jwks}"\n'
    )
    env = {
        **os.environ,
        "UNITGUARD_SECRET_KEY": uuid.uuid4().hex * 2,
        "UNITGUARD_DATA_DIR": str(workdir / "data"),  # one SQLite database for every store
        "UNITGUARD_RATE_LIMITS": "off",  # this measures capacity, not the per-client limits
        "UNITGUARD_PUBLIC_URL": f"http://127.0.0.1:{port}",  # the redirect URI
        "UNITGUARD_VISIT_CACHE_SECONDS": str(args.visit_cache_seconds),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "serve", "--port", str(port), "--ehrs", str(ehrs)]
        + ["--workers", str(args.workers)],
        stdout=subprocess.DEVNULL,  # the access log: one line a request
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"serve did not start: {proc.stderr.read()}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("serve did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=25, help="per user and phase")
    parser.add_argument("--half-open", type=int, default=300)
    parser.add_argument("--hold-seconds", type=float, default=10.0)
    parser.add_argument(
        "--visit-cache-seconds", type=int, default=60, help="0 re-reads the visit on every page"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the sandbox EHR's request lines
    key = RSAKey.generate_key(2048, parameters={"kid": "ehr"})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_sandbox("full") as ehr, tempfile.TemporaryDirectory() as tmp:
        ehr.register("unitguard", f"{base}/callback")
        ehr.sandbox.app_launch_url = f"{base}/launch"
        proc = start_serve(port, ehr.fhir, Path(tmp), key, args)
        try:
            run_phases(args, ehr, base, key, proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def run_phases(args, ehr, base: str, key: RSAKey, pid: int) -> None:
    print(f"unitguard serve under gunicorn: {args.workers} workers, {args.users} users, loopback")

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
        session = requests.Session()
        times, errors = [], 0
        for _ in range(args.requests):
            token = jwt.encode(
                {"alg": "RS384", "kid": "ehr"},
                {
                    "iss": CDS_ISSUER,
                    "aud": f"{base}/cds-services/{SERVICE}",
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
            resp = session.post(
                f"{base}/cds-services/{SERVICE}",
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

    port = int(base.rsplit(":", 1)[1])
    before = server_threads(pid)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.half_open)]
    try:
        times, errors, threads = [], 0, before
        deadline = time.perf_counter() + args.hold_seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                ok = requests.get(f"{base}/healthz", timeout=5).ok
            except requests.RequestException:
                ok = False
            times.append((time.perf_counter() - start) * 1000)
            errors += not ok
            threads = max(threads, server_threads(pid))
            time.sleep(0.05)
    finally:
        for sock in idle:
            sock.close()
    times.sort()
    print(
        f"/healthz while {args.half_open} half-open connections were held "
        f"{args.hold_seconds:.0f} s: {len(times)} requests, p50 {statistics.median(times):.0f} ms, "
        f"p95 {times[max(0, int(len(times) * 0.95) - 1)]:.0f} ms, slowest {times[-1]:.0f} ms "
        f"(all under 1 s: {times[-1] < 1000}), errors {errors}; server threads {before} "
        f"before, at most {threads} during"
    )


if __name__ == "__main__":
    main()
