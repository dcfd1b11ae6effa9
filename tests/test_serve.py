"""`unitguard serve`: serves, refuses a taken port or a bad config in one line, stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_env(tmp_path) -> dict:
    """What serve needs to start: a data folder and an EHR list (its EHR is never contacted)."""
    ehrs = tmp_path / "placeholder-ehrs.toml"
    ehrs.write_text(
        '[[ehr]]\nname = "placeholder"\nissuer = "https://ehr.invalid/fhir"\n'
        'client_id = "unitguard"\n'
    )
    return {"UNITGUARD_DATA_DIR": str(tmp_path / "data"), "UNITGUARD_EHRS": str(ehrs)}


def start(*args: str, tmp_path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **serve_env(tmp_path), **(env or {})},
    )


def wait_healthy(port: int, proc: subprocess.Popen, within: float = 60.0) -> None:
    """Until serve answers /healthz; on a loaded machine its start (migrations, forking the
    workers) can take many seconds, so this waits by a deadline, not by a count of tries."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return
        except requests.RequestException:  # not listening yet, or too busy to answer
            time.sleep(0.1)
    raise AssertionError(f"serve did not answer /healthz within {within:.0f} s")


def test_serve_prints_urls_and_stops_on_sigterm(tmp_path):
    port = free_port()
    proc = start("--port", str(port), tmp_path=tmp_path)
    try:
        wait_healthy(port, proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{port}/queue" in out


def test_serve_refuses_a_taken_port(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = start("--port", str(port), tmp_path=tmp_path)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"unitguard: port {port} on 127.0.0.1 is already in use; choose another with --port"
    ]


def test_serve_refuses_an_invalid_ehr_list(tmp_path):
    bad = tmp_path / "ehrs.toml"
    bad.write_text("[[ehr]]\nname = 'x'\n")
    proc = start("--port", str(free_port()), "--ehrs", str(bad), tmp_path=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert len(err.strip().splitlines()) == 1 and "ehrs.toml" in err and "issuer" in err


def test_demo_serves_the_chart_and_the_app_and_stops():
    port = free_port()
    while True:  # the sandbox takes PORT+10
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 10))
            break
        except OSError:
            port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(port, proc)
        chart = requests.get(f"http://127.0.0.1:{port + 10}/", timeout=5)
        assert chart.ok and 'data-encounter="units-exceed-enc-1"' in chart.text
        assert 'id="coder-launch"' in chart.text
        landing = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert landing.ok and f'data-iss="http://127.0.0.1:{port + 10}/fhir"' in landing.text
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert f"Open http://127.0.0.1:{port + 10}/" in out
    assert f"http://127.0.0.1:{port}/login?iss=http://127.0.0.1:{port + 10}/fhir" in out
    assert "Coding work queue" in out


def test_sandbox_refuses_a_taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "plugin.cli", "sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2 and "already in use" in proc.stderr
