"""The audit on a real Dask cluster: `dask scheduler` and two `dask worker` processes on
loopback, each worker in a working directory of its own, as on separate machines. A relative
SOURCE (as anyone types it) gives the same findings as a local run; a worker that cannot see
the files is named in one line, not a traceback from inside the first pass."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plugin.batch.synth import generate
from tests.test_serve import free_port

DASK = Path(sys.executable).with_name("dask")


def need_unshare() -> str:
    tool = shutil.which("unshare")
    if tool and os.geteuid() == 0:
        return tool
    if os.environ.get("CI") == "true":
        pytest.fail("the blind-worker test needs root and util-linux's unshare (CI runs as root)")
    pytest.skip("needs root and unshare to give one worker its own mounts")


def start(args: list[str], cwd: Path, prefix: list[str] | None = None) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [*(prefix or []), str(DASK), *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"},
    )


def workers_seen(address: str, count: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=timeout)
        deadline = time.monotonic() + timeout
        while len(client.scheduler_info()["workers"]) != count:
            assert time.monotonic() < deadline, "the cluster did not settle"
            time.sleep(0.2)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Throwaway processes holding nothing worth a graceful stop (a worker takes seconds)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not DASK.exists():
        pytest.fail(f"{DASK} missing: dask[distributed] is in the lock")
    root = tmp_path_factory.mktemp("cluster")
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    procs = [start(["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"], root)]
    try:
        for n in (1, 2):
            procs.append(
                start(
                    ["worker", address, "--no-nanny", "--nthreads", "1", "--no-dashboard"]
                    + ["--local-directory", str(root / f"w{n}")],
                    root / f"w{n}",  # each worker's own working directory
                )
            )
        workers_seen(address, 2)
        yield address, root
    finally:
        stop_all(procs)


def audit(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plugin.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def findings(folder: Path) -> list[tuple]:
    with (folder / "findings.csv").open(newline="") as handle:
        return sorted(tuple(row.values()) for row in csv.DictReader(handle))


def test_a_relative_source_audits_on_the_cluster_as_it_does_locally(cluster):
    address, root = cluster
    client = root / "client"
    generate(client / "year", 20, 0.3, 7)
    scratch = root / "shared-scratch"
    scratch.mkdir()
    env = {"UNITGUARD_SCRATCH": "../shared-scratch"}  # relative too
    on_cluster = audit("year", "--out", "out-cluster", "--scheduler", address, cwd=client, env=env)
    assert on_cluster.returncode == 0, on_cluster.stderr
    assert "Traceback" not in on_cluster.stderr
    local = audit("year", "--out", "out-local", "--scheduler", "sync", cwd=client)
    assert local.returncode == 0, local.stderr
    summary = on_cluster.stdout.replace("out-cluster", "out-local")
    assert summary == local.stdout  # "N therapy visits reviewed, ..."
    assert findings(client / "out-cluster") == findings(client / "out-local") != []


def test_a_worker_that_cannot_see_the_files_is_named_in_one_line(cluster):
    """A third worker with its own mounts: an empty tmpfs over the folder holding the input,
    as a machine that does not mount the shared storage."""
    unshare = need_unshare()
    address, root = cluster
    shared = root / "blind"
    generate(shared / "year", 10, 0.3, 8)
    blind = start(
        ["worker", address, "--no-nanny", "--nthreads", "1", "--no-dashboard"]
        + ["--local-directory", "/tmp", "--name", "blind"],
        root / "w3",
        prefix=[
            unshare,
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'mount -t tmpfs none "{shared}" && exec "$0" "$@"',
        ],
    )
    try:
        workers_seen(address, 3)
        found = audit(
            str(shared / "year"),
            "--out",
            str(root / "out-blind"),
            "--scheduler",
            address,
            cwd=root,
            env={"UNITGUARD_SCRATCH": str(shared)},
        )
    finally:
        stop_all([blind])
        workers_seen(address, 2)
    assert found.returncode == 2, found.stderr
    lines = found.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in found.stderr
    assert lines[0].startswith("unitguard: Dask worker tcp://127.0.0.1:")
    assert f"cannot see the audit's files: no folder {shared / 'year'}" in lines[0]
    assert not (root / "out-blind" / "findings.csv").exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    generate(tmp_path / "year", 5, 0.3, 9)
    found = audit(
        "year",
        "--out",
        "out",
        "--scheduler",
        f"tcp://127.0.0.1:{free_port()}",
        cwd=tmp_path,
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
    )
    assert found.returncode == 2
    lines = found.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:" in lines[0]
