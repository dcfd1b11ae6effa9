"""300 stalled clients against unitguard serve behind the shipped nginx, and against serve alone.

Starts `unitguard serve` (1 worker x 2 threads: any stalled client that reached a thread would
be felt at once) and deploy/nginx/unitguard.conf in front of it on loopback, with a throwaway
certificate. Then opens N connections (default 300) that stall mid-request: half send part of a
request head, half a whole head and half of a body. While they hang, /healthz is asked 20 times
on fresh connections, through nginx and straight to serve; last, it counts how many of the
stalled connections nginx has closed after its 10 s header and body timeouts. The same stall is
then made against serve alone (its worker reads heads and small bodies in its poller, and drops
a head not complete within --header-timeout). Loopback only, bounded in count and time.

Prints, per target, /healthz median and max ms with the stalls held, and the stalls closed.
Last line: ``healthz under 300 stalls via nginx: max X ms``.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.nginx_front import nginx_in_front  # noqa: E402
from tests.test_serve import free_port, serve_env, wait_healthy  # noqa: E402

HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stalled: "
HALF_BODY = (
    b"POST /fhir/Task HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
    b"Content-Length: 20000\r\n\r\n" + b" " * 10000
)


def stall(port: int, count: int, context: ssl.SSLContext | None) -> list[socket.socket]:
    stalled = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        sock.sendall(HALF_HEAD if n % 2 == 0 else HALF_BODY)
        stalled.append(sock)
    return stalled


def healthz_ms(url: str, verify: str | bool, runs: int = 20) -> list[float]:
    times = []
    for _ in range(runs):
        with requests.Session() as fresh:  # a new connection (and TLS handshake) each time
            fresh.trust_env = False
            start = time.perf_counter()
            answer = fresh.get(f"{url}/healthz", timeout=30, verify=verify)
            times.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200, answer.status_code
    return times


def closed(stalled: list[socket.socket], wait: float) -> int:
    """How many of the stalled connections the server has closed (or answered) by now."""
    deadline = time.monotonic() + wait
    count = 0
    for sock in stalled:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(1024)
            count += data == b"" or data.startswith(b"HTTP/1.1 408") or b"408" in data[:20]
        except (TimeoutError, ssl.SSLError, OSError) as exc:
            count += not isinstance(exc, TimeoutError)
    return count


def report(name: str, times: list[float]) -> None:
    print(
        f"  {name:34s} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms"
        f"   ({len(times)} requests)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stalls", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stall-bench-") as tmp:
        folder = Path(tmp)
        app_port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "plugin.cli", "serve", "--port", str(app_port)]
            + ["--workers", "1", "--threads", "2", "--header-timeout", "10"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **serve_env(folder), "UNITGUARD_PROXY_HOPS": "1"},
        )
        try:
            wait_healthy(app_port, proc)
            app = f"http://127.0.0.1:{app_port}"
            with nginx_in_front(app_port, folder / "nginx") as front:
                context = ssl.create_default_context(cafile=str(front.cert))
                cert = str(front.cert)
                print(
                    f"serve: 1 worker x 2 threads; {args.stalls} stalled clients "
                    f"(half with half a head, half with half a body)"
                )
                print("nginx in front:")
                report("healthz, nothing stalled", healthz_ms(front.base, cert))
                started = time.monotonic()
                stalled = stall(front.https, args.stalls, context)
                opened = time.monotonic()
                print(f"  {args.stalls} stalls opened in {opened - started:.1f} s")
                via_nginx = healthz_ms(front.base, cert)
                report("healthz via nginx, stalls held", via_nginx)
                report("healthz straight to serve, held", healthz_ms(app, False))
                # the last stall opened when stall() returned: 10 s from then, and a margin
                shut = closed(stalled, wait=max(0.0, opened + 12 - time.monotonic()))
                print(f"  stalls nginx closed after its 10 s timeouts: {shut} of {args.stalls}")
                for sock in stalled:
                    sock.close()
            print("serve alone:")
            stalled = stall(app_port, args.stalls, None)
            opened = time.monotonic()
            alone = healthz_ms(app, False)
            report("healthz, stalls held", alone)
            shut = closed(stalled, wait=max(0.0, opened + 12 - time.monotonic()))
            print(
                f"  stalls serve closed after --header-timeout 10 s: {shut} of {args.stalls}"
                " (a half body waits for the request timeout, 30 s)"
            )
            for sock in stalled:
                sock.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stderr.close()
    print(f"healthz under {args.stalls} stalls via nginx: max {max(via_nginx):.0f} ms")


if __name__ == "__main__":
    main()
