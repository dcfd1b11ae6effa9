"""deploy/systemd/unitguard.service: a unit systemd accepts, sandboxed, running serve on
loopback behind the shipped nginx configuration with its data folder made private."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy/systemd/unitguard.service"
NGINX = ROOT / "deploy/nginx/unitguard.conf"


def parsed() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_the_unit_sandboxes_the_service():
    service = parsed()["Service"]
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "UMask": "0077",
        "StateDirectoryMode": "0700",
        "CapabilityBoundingSet": "",
        "User": "unitguard",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    assert "@system-service" in service["SystemCallFilter"]


def test_the_unit_runs_serve_on_loopback_behind_nginx_with_its_data_folder():
    service = parsed()["Service"]
    command = service["ExecStart"][0].split()
    assert command[:2] == ["/opt/unitguard/venv/bin/unitguard", "serve"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    port = command[command.index("--port") + 1]
    assert f"server 127.0.0.1:{port};" in NGINX.read_text()  # nginx proxies to this port
    assert f"/var/lib/{service['StateDirectory'][0]}" == "/var/lib/unitguard"
    assert "UNITGUARD_DATA_DIR=/var/lib/unitguard" in service["Environment"]
    assert service["KillSignal"] == ["SIGTERM"]  # serve's graceful stop


@pytest.fixture
def runnable_unit(tmp_path) -> Path:
    """The unit with ExecStart pointing at this environment's unitguard (systemd-analyze
    verify checks that the command exists)."""
    unitguard = Path(sys.executable).with_name("unitguard")
    assert unitguard.exists()
    unit = tmp_path / "unitguard.service"
    unit.write_text(UNIT.read_text().replace("/opt/unitguard/venv/bin/unitguard", str(unitguard)))
    return unit


def test_systemd_accepts_the_unit_without_a_warning(runnable_unit):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed; the unit is checked by parsing only")
    found = subprocess.run(
        [tool, "verify", "--man=no", str(runnable_unit)], capture_output=True, text=True
    )
    assert found.returncode == 0 and found.stderr == "" and found.stdout == "", found.stderr


def test_systemd_rates_the_unit_exposure_low(runnable_unit):
    """systemd's own score, 0 (sandboxed) to 10 (exposed); --threshold is in tenths."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed; the unit is checked by parsing only")
    found = subprocess.run(
        [tool, "security", "--offline=true", "--threshold=20", "--no-pager", runnable_unit.name],
        capture_output=True,
        text=True,
        cwd=runnable_unit.parent,
    )
    level = re.search(r"Overall exposure level for unitguard\.service: ([\d.]+)", found.stdout)
    assert found.returncode == 0 and float(level.group(1)) <= 2.0, found.stdout[-2000:]
