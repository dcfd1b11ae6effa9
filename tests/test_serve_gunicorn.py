"""`unitguard serve` under gunicorn: workers share launches, the access log holds no query or
identifier, oversized bodies get 413 unread, silent connections take no thread."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

from tests.loopback import running_sandbox
from tests.test_serve import free_port, serve_env, wait_healthy


def serve(port: int, *args: str, tmp_path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            **serve_env(tmp_path),
            "UNITGUARD_RATE_LIMITS": "off",
            **(env or {}),
        },
    )


class Output:
    """Collects a process's stdout as it comes (the access log)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))


def stop(proc: subprocess.Popen, out: Output | None = None) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    if out:
        out.thread.join(timeout=5)
    proc.stderr.close()
    proc.stdout.close()
    assert proc.returncode == 0


def launch(ehr, port: int, visit: str = "units-exceed-enc-1") -> requests.Response:
    browser = requests.Session()
    browser.headers["Connection"] = "close"  # each request on a new connection: any worker
    frame = browser.get(f"{ehr.base_url}/chart/launch/{visit}", timeout=30).text
    src = re.search(r'src="([^"]+)"', frame).group(1).replace("&amp;", "&")
    return browser.get(src, timeout=30)


def test_a_launch_started_on_one_worker_finishes_on_the_other(tmp_path):
    with running_sandbox("full") as ehr:
        port = free_port()
        ehrs = tmp_path / "ehrs.toml"
        ehrs.write_text(
            f'[[ehr]]\nname = "sandbox"\nissuer = "{ehr.fhir}"\nclient_id = "unitguard"\n'
            'scopes = ["launch", "openid", "fhirUser", "patient/*.rs", "user/Task.cu"]\n'
        )
        ehr.register("unitguard", f"http://127.0.0.1:{port}/callback")
        ehr.sandbox.app_launch_url = f"http://127.0.0.1:{port}/launch"
        proc = serve(port, "--workers", "2", "--ehrs", str(ehrs), tmp_path=tmp_path)
        out = Output(proc)
        try:
            wait_healthy(port, proc)
            pages = [launch(ehr, port) for _ in range(16)]
        finally:
            stop(proc, out)
    assert all(p.status_code == 200 and "data-verdict" in p.text for p in pages)
    served = [re.search(r'worker=<(\d+)> "GET (\S+)"', line) for line in out.lines]
    by_route = {"/launch": [], "/callback": []}
    for found in filter(None, served):
        if found.group(2) in by_route:
            by_route[found.group(2)].append(found.group(1))
    assert len(by_route["/launch"]) == len(by_route["/callback"]) == 16
    pairs = list(zip(by_route["/launch"], by_route["/callback"], strict=True))
    assert len({pid for pair in pairs for pid in pair}) == 2  # two workers served
    assert any(start != finish for start, finish in pairs)  # and a launch crossed them


def test_the_access_log_holds_no_query_session_code_or_patient(tmp_path):
    with running_sandbox("full") as ehr:
        port = free_port()
        ehrs = tmp_path / "ehrs.toml"
        ehrs.write_text(
            f'[[ehr]]\nname = "sandbox"\nissuer = "{ehr.fhir}"\nclient_id = "unitguard"\n'
            'scopes = ["launch", "openid", "fhirUser", "patient/*.rs", "user/Task.cu"]\n'
        )
        ehr.register("unitguard", f"http://127.0.0.1:{port}/callback")
        ehr.sandbox.app_launch_url = f"http://127.0.0.1:{port}/launch"
        proc = serve(port, "--workers", "1", "--ehrs", str(ehrs), tmp_path=tmp_path)
        out = Output(proc)
        try:
            wait_healthy(port, proc)
            page = launch(ehr, port)
            sid = re.search(r"sid=([\w-]+)", page.url).group(1)
            requests.get(page.url + "&refresh=1", timeout=30)  # the review again, re-read
        finally:
            stop(proc, out)
    log = "\n".join(out.lines)
    assert '"GET /review/<encounter_id>" 200' in log and '"GET /callback" 302' in log
    for secret in (sid, "?", "code=", "state=", "sid", "units-exceed", "Patient", "pat-1"):
        assert secret not in log


def test_an_oversized_body_gets_413_before_it_is_read(tmp_path):
    port = free_port()
    proc = serve(port, "--workers", "1", tmp_path=tmp_path)
    try:
        wait_healthy(port, proc)
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(
                b"POST /fhir/Task HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 5000000\r\n\r\n"
            )  # and not one byte of the 5 MB: the answer must not wait for them
            raw.settimeout(5)
            answer = raw.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413")
        assert time.perf_counter() - start < 1
        resp = requests.post(f"http://127.0.0.1:{port}/queue", data=b"a=" * 2_500_000, timeout=30)
        assert resp.status_code == 413  # 5 million bytes of form fields
    finally:
        stop(proc)


def test_silent_connections_take_no_thread(tmp_path):
    port = free_port()
    proc = serve(port, "--workers", "1", "--threads", "2", tmp_path=tmp_path)
    idle = []
    try:
        wait_healthy(port, proc)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
        time.sleep(0.3)
        for _ in range(5):
            start = time.perf_counter()
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).ok
            assert time.perf_counter() - start < 1
    finally:
        for sock in idle:
            sock.close()
        stop(proc)


def test_workers_and_threads_are_capped(tmp_path):
    for args in (["--workers", "0"], ["--workers", "99"], ["--threads", "500"]):
        proc = serve(free_port(), *args, tmp_path=tmp_path)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 2
        assert len(err.strip().splitlines()) == 1 and "between 1 and 32" in err
