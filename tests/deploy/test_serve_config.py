"""`unitguard serve` at a hospital: refuses what it must (one line, exit 2), checks its
configuration against the EHRs (`--check`), keeps everything in its data folder, private, and
deletes expired sessions' tokens."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time

import pytest
from joserfc.jwk import RSAKey

from plugin import schema
from plugin.datadir import DataDirError, open_data_dir
from plugin.web import create_app
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from tests.deploy.test_schema import invoke, legacy_database
from tests.loopback import running_sandbox
from tests.test_serve import free_port, serve_env, wait_healthy
from tests.test_serve_gunicorn import Output, launch, stop
from tests.web.conftest import FakeClock


def serve(*args: str, env: dict):
    """`unitguard serve ARGS` in this process (what it refuses, it refuses before serving)."""
    return invoke("serve", "--port", str(free_port()), *args, env=env)


def refused(found) -> str:
    assert found.exit_code == 2, found.output
    lines = found.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unitguard: "), lines
    return lines[0]


def test_serve_refuses_to_start_without_an_ehr_list(tmp_path):
    env = {**serve_env(tmp_path), "UNITGUARD_EHRS": ""}
    assert "no EHR list" in refused(serve(env=env))


def test_serve_refuses_another_address_without_a_public_url(tmp_path):
    env = {**serve_env(tmp_path), "UNITGUARD_PUBLIC_URL": ""}
    line = refused(serve("--host", "0.0.0.0", env=env))
    assert "UNITGUARD_PUBLIC_URL is not set" in line and "0.0.0.0" in line


def test_serve_refuses_a_public_url_that_is_not_https(tmp_path):
    env = {**serve_env(tmp_path), "UNITGUARD_PUBLIC_URL": "http://unitguard.example.org"}
    line = refused(serve("--host", "0.0.0.0", env=env))
    assert "must be an https:// address" in line and "http://unitguard.example.org" in line


def test_serve_refuses_without_a_data_folder_or_database(tmp_path):
    env = {**serve_env(tmp_path), "UNITGUARD_DATA_DIR": "", "UNITGUARD_DATABASE_URL": ""}
    assert "UNITGUARD_DATA_DIR is not set" in refused(serve(env=env))


def test_serve_refuses_the_retired_database_variables(tmp_path):
    env = {**serve_env(tmp_path), "UNITGUARD_TASK_DB": "sqlite:///unitguard-tasks.sqlite"}
    line = refused(serve(env=env))
    assert "UNITGUARD_TASK_DB is no longer read" in line and "UNITGUARD_DATABASE_URL" in line


def test_serve_refuses_a_database_whose_schema_is_behind(tmp_path):
    env = serve_env(tmp_path)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    legacy_database(data / "unitguard.sqlite")
    line = refused(serve(env=env))
    assert "made before schema migrations" in line and "unitguard db upgrade" in line


def test_serve_refuses_a_data_folder_open_to_other_users(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    line = refused(serve(env=serve_env(tmp_path)))
    assert f"chmod 700 {data}" in line


def test_the_data_folder_is_made_private_and_our_files_tightened(tmp_path):
    folder = tmp_path / "new" / "data"
    open_data_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "unitguard.sqlite").stat().st_mode) == 0o600
    (folder / "unitguard.sqlite").chmod(0o644)  # e.g. copied in from an older install
    open_data_dir(folder)
    assert stat.S_IMODE((folder / "unitguard.sqlite").stat().st_mode) == 0o600
    with pytest.raises(DataDirError, match="absolute"):
        open_data_dir("relative/data")


def test_serve_check_passes_against_a_reachable_ehr_and_fails_against_a_dead_one(tmp_path):
    key = tmp_path / "app.pem"
    key.write_bytes(RSAKey.generate_key(2048).as_pem(private=True))
    with running_sandbox("epic") as ehr:
        ehrs = tmp_path / "ehrs.toml"
        ehrs.write_text(
            f'[[ehr]]\nname = "sandbox"\nissuer = "{ehr.fhir}"\nclient_id = "unitguard"\n'
            f'private_key = "{key}"\n'
        )
        env = {**serve_env(tmp_path), "UNITGUARD_EHRS": str(ehrs)}
        good = serve("--check", env=env)
    assert good.exit_code == 0, good.stdout
    lines = good.stdout.strip().splitlines()
    assert all(line.startswith("ok ") for line in lines[:-1]) and lines[-1] == "all checks passed"
    text = good.stdout
    assert "EHR 'sandbox': SMART configuration read" in text
    assert "EHR 'sandbox': CapabilityStatement read (FHIR 4.0.1)" in text
    assert f"EHR 'sandbox': private_key {key}: RSA key loaded" in text
    assert "data folder" in text and "schema" in text
    # The same list once the sandbox is gone, and a key file that is not a key.
    key.write_text("not a key")
    bad = serve("--check", env=env)
    assert bad.exit_code == 2
    failed = [line for line in bad.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 3, bad.stdout
    assert "cannot read the SMART configuration" in failed[0]
    assert "/metadata" in failed[1] and "not an RSA private key" in failed[2]
    assert bad.stdout.strip().endswith("3 check(s) failed")


def test_serve_keeps_everything_in_its_data_folder_privately(tmp_path):
    """A real launch (sessions with EHR tokens, launch states, Tasks' database) under serve,
    run from an empty working directory with an empty HOME: both stay empty (no database, no
    gunicorn control socket), and the data folder is 0700 with every file 0600."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    with running_sandbox("full") as ehr:
        port = free_port()
        ehrs = tmp_path / "ehrs.toml"
        ehrs.write_text(
            f'[[ehr]]\nname = "sandbox"\nissuer = "{ehr.fhir}"\nclient_id = "unitguard"\n'
            'scopes = ["launch", "openid", "fhirUser", "patient/*.rs"]\n'
        )
        ehr.register("unitguard", f"http://127.0.0.1:{port}/callback")
        ehr.sandbox.app_launch_url = f"http://127.0.0.1:{port}/launch"
        env = {
            **os.environ,
            **serve_env(tmp_path),
            "UNITGUARD_EHRS": str(ehrs),
            "HOME": str(home),
            "XDG_RUNTIME_DIR": "",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "plugin.cli", "serve", "--port", str(port), "--workers", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        out = Output(proc)
        try:
            wait_healthy(port, proc)
            page = launch(ehr, port)
        finally:
            stop(proc, out)
    assert page.status_code == 200 and "data-verdict" in page.text
    assert list(cwd.iterdir()) == [] and list(home.iterdir()) == []
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = list(data.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def test_expired_sessions_and_their_tokens_are_swept_from_the_disk(tmp_path):
    """The app's housekeeping deletes a session once it has expired, without waiting for the
    next launch, and SQLite's secure_delete leaves none of its bytes in the file."""
    clock = FakeClock()
    data = tmp_path / "data"
    settings = Settings(testing=True, data_dir=str(data), idle_minutes=15)
    url = f"sqlite:///{data}/unitguard.sqlite"
    settings = Settings(
        **{**settings.__dict__, "task_db": url, "outbox_db": url, "session_db": url}
    ).validated()
    app = create_app(settings, clock=clock)
    services = app.extensions["unitguard"]
    token = "EHR-ACCESS-TOKEN-" + "x7" * 20
    for n in range(3):
        services.sessions.create(
            LaunchSession(iss="https://ehr.example/fhir", token={"access_token": f"{token}{n}"})
        )
    stop_sweeping = services.start_housekeeping(every=0.05)
    try:
        database = data / "unitguard.sqlite"
        assert token.encode() in database.read_bytes()
        clock.now += 16 * 60  # idle for longer than the 15 minutes a session lasts idle
        deadline = time.monotonic() + 10
        while token.encode() in database.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_sweeping.set()
    with services.sessions.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sessions").scalar() == 0
    assert not any(token.encode() in f.read_bytes() for f in data.iterdir())
    assert re.fullmatch(r"\d{4}", schema.head())
