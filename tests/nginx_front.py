"""deploy/nginx/unitguard.conf run as shipped in front of a loopback app, for tests and
benchmarks: only its ports, certificate and log paths are replaced (each replacement must
match, so a change to the file that these stop matching fails loudly), with a throwaway
self-signed certificate made by openssl. nginx runs in the foreground as a child process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "deploy/nginx/unitguard.conf"


def need(tool: str) -> str:
    """The tool's path; missing, a failure under CI (.ci/run installs it), else a skip."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found:
        return found
    message = f"{tool} is not installed (.ci/run installs Debian's {tool})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx/unitguard.conf no longer has {old!r} once"
    return text.replace(old, new)


@dataclass
class Front:
    https: int
    http: int
    cert: Path
    folder: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https}"

    def access_log(self) -> str:
        path = self.folder / "access.log"
        return path.read_text() if path.exists() else ""


def configured(folder: Path, app_port: int, https: int, http: int, cert: Path, key: Path) -> str:
    text = SHIPPED.read_text()
    text = replace_once(text, "server 127.0.0.1:8080;", f"server 127.0.0.1:{app_port};")
    text = replace_once(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
    text = replace_once(text, "listen 80;", f"listen 127.0.0.1:{http};")
    text = replace_once(text, "/etc/ssl/unitguard/fullchain.pem", str(cert))
    text = replace_once(text, "/etc/ssl/unitguard/privkey.pem", str(key))
    text = replace_once(text, "/var/log/nginx/unitguard.error.log", str(folder / "error.log"))
    return text.replace("/var/log/nginx/unitguard.access.log", str(folder / "access.log"))


@contextmanager
def nginx_in_front(app_port: int, folder: Path, https: int | None = None) -> Iterator[Front]:
    """nginx with the shipped server blocks, TLS on one loopback port (``https``, else a free
    one) and the redirect on another, proxying to the app on ``app_port``; stopped when the
    block ends."""
    nginx = need("nginx")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(folder)
    https, http = https or free_port(), free_port()
    (folder / "unitguard.conf").write_text(configured(folder, app_port, https, http, cert, key))
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    (folder / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        + "worker_processes 1;\ndaemon off;\nevents { worker_connections 2048; }\n"
        + "http {\n"
        + "".join(
            f"  {name}_temp_path {path};\n"
            for name, path in (
                ("client_body", temp["body"]),
                ("proxy", temp["proxy"]),
                ("fastcgi", temp["fastcgi"]),
                ("uwsgi", temp["uwsgi"]),
                ("scgi", temp["scgi"]),
            )
        )
        + f"  include {folder}/unitguard.conf;\n}}\n"
    )
    test = subprocess.run(
        [nginx, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen(
        [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30  # by a deadline: a loaded machine starts it slowly
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"nginx stopped: {proc.stderr.read()}")
            try:
                socket.create_connection(("127.0.0.1", https), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("nginx did not listen within 30 s") from None
                time.sleep(0.05)
        yield Front(https, http, cert, folder)
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: finish and stop
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
