"""Bulk $export: the client against fake servers (each failure one clear message) and the whole
audit from a base URL against the sandbox, with SMART Backend Services."""

from __future__ import annotations

import csv

import pytest
import requests
import responses
from click.testing import CliRunner
from joserfc.jwk import RSAKey

from plugin.batch.audit import run_audit
from plugin.batch.synth import generate
from plugin.cli import main
from smart_launch.bulk import BulkExport, BulkExportFailed
from tests.loopback import running_sandbox

BASE = "https://ehr.example/fhir"
STATUS = "https://ehr.example/fhir/$export-status/1"
KEY = RSAKey.generate_key(2048, parameters={"kid": "auditor"})


def exporter(**kwargs) -> tuple[BulkExport, list[float]]:
    slept: list[float] = []
    kwargs.setdefault("token", lambda: "t0ken")
    return BulkExport(BASE, sleep=slept.append, session=requests.Session(), **kwargs), slept


def manifest(*outputs, errors=()):
    return {
        "transactionTime": "2026-11-23T10:00:00Z",
        "requiresAccessToken": True,
        "output": [{"type": t, "url": u} for t, u in outputs],
        "error": [{"type": "OperationOutcome", "url": u} for u in errors],
    }


@responses.activate
def test_polls_as_retry_after_asks_then_downloads_every_file(tmp_path):
    kick = responses.get(
        f"{BASE}/Group/g1/$export",
        status=202,
        headers={"Content-Location": STATUS},
    )
    responses.get(STATUS, status=202, headers={"Retry-After": "3", "X-Progress": "10%"})
    responses.get(STATUS, status=429, headers={"Retry-After": "5"})
    responses.get(
        STATUS,
        json=manifest(
            ("Patient", f"{BASE}/files/p1"),
            ("Procedure", f"{BASE}/files/pr1"),
            ("Procedure", f"{BASE}/files/pr2"),
            errors=[f"{BASE}/files/err"],
        ),
    )
    responses.get(f"{BASE}/files/p1", body=b'{"resourceType":"Patient","id":"a"}\n')
    responses.get(f"{BASE}/files/pr1", body=b'{"resourceType":"Procedure"}\n' * 3)
    responses.get(f"{BASE}/files/pr2", body=b'{"resourceType":"Procedure"}\n' * 2)
    responses.get(
        f"{BASE}/files/err",
        body=b'{"resourceType":"OperationOutcome","issue":[{"diagnostics":"Goal not exported"}]}\n',
    )
    deleted = responses.delete(STATUS, status=202)
    client, slept = exporter()
    progress: list[str] = []
    result = client.run(
        tmp_path, group="g1", types=("Patient", "Procedure"), progress=progress.append
    )
    assert slept == [3.0, 5.0] and progress == ["10%"] and result.polls == 3
    assert result.resources == {"Patient": 1, "Procedure": 5}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Patient.001.ndjson",
        "Procedure.001.ndjson",
        "Procedure.002.ndjson",
    ]
    assert result.errors == ["Goal not exported"]
    sent = kick.calls[0].request
    assert (
        sent.headers["Prefer"] == "respond-async"
        and sent.headers["Authorization"] == "Bearer t0ken"
    )
    assert "_type=Patient%2CProcedure" in sent.url
    assert deleted.call_count == 1


@responses.activate
def test_kick_off_refusal_names_the_step_and_the_servers_words(tmp_path):
    responses.get(
        f"{BASE}/$export",
        status=403,
        json={"resourceType": "OperationOutcome", "issue": [{"diagnostics": "scope too narrow"}]},
    )
    client, _ = exporter()
    with pytest.raises(BulkExportFailed, match=r"export kick-off: .*403 \(scope too narrow\)"):
        client.run(tmp_path)


@responses.activate
def test_a_file_url_on_another_origin_is_refused_and_gets_no_token(tmp_path):
    responses.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    responses.get(STATUS, json=manifest(("Patient", "https://elsewhere.example/p1")))
    client, _ = exporter()
    with pytest.raises(BulkExportFailed, match="outside its own origin"):
        client.run(tmp_path)
    assert all("elsewhere" not in call.request.url for call in responses.calls)


@responses.activate
def test_an_export_that_never_finishes_stops_at_max_wait(tmp_path):
    responses.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    responses.get(STATUS, status=202, headers={"Retry-After": "60"})
    now = [0.0]
    client, slept = exporter(max_wait=300, clock=lambda: now[0])
    client.sleep = lambda s: (slept.append(s), now.__setitem__(0, now[0] + s))
    with pytest.raises(BulkExportFailed, match="not ready after 300 s"):
        client.run(tmp_path)
    assert len(slept) == 5  # waits up to t=300 exactly; the sixth would pass the deadline


@responses.activate
def test_a_401_refreshes_the_token_once(tmp_path):
    tokens = iter(["old", "new"])
    current = {"t": next(tokens)}
    responses.get(f"{BASE}/$export", status=401)
    responses.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    client, _ = exporter(token=lambda: current["t"], refresh=lambda: current.update(t=next(tokens)))
    assert client.kick_off() == STATUS
    assert responses.calls[1].request.headers["Authorization"] == "Bearer new"


@responses.activate
def test_a_broken_manifest_and_a_failed_file_are_clear_errors(tmp_path):
    responses.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    responses.get(STATUS, body=b"<html>gateway</html>", status=200)
    client, _ = exporter()
    with pytest.raises(BulkExportFailed, match="manifest is not JSON"):
        client.run(tmp_path)
    with pytest.raises(BulkExportFailed, match=r"export file 1 \(Patient\): .*404"):
        responses.replace(responses.GET, STATUS, json=manifest(("Patient", f"{BASE}/files/p")))
        responses.get(f"{BASE}/files/p", status=404)
        client.run(tmp_path)
    assert not list(tmp_path.glob("*.part"))  # nothing half-written left behind


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    data = tmp_path_factory.mktemp("synth")
    generate(data, visits=24, defect_rate=0.5, seed=11)
    return data


def rows(path):
    with path.open() as fh:
        return sorted(tuple(r.values()) for r in csv.DictReader(fh))


@pytest.mark.parametrize("profile", ["epic", "full"])
def test_audit_from_a_base_url_equals_the_audit_of_the_files(synthetic, tmp_path, profile):
    expected = tmp_path / "from-files"
    run_audit(synthetic, expected, buckets=2, progress=False)
    pem = tmp_path / "auditor.pem"
    pem.write_bytes(KEY.as_pem(private=True))
    with running_sandbox(profile, data_dir=synthetic) as ehr:
        ehr.register("auditor", "", jwks={"keys": [KEY.as_dict(private=False)]})
        ehr.sandbox.faults.export_polls = 2
        ehr.sandbox.faults.retry_after = 0
        ehr.sandbox.faults.export_file_lines = 7  # several files per type
        args = ["audit", ehr.fhir, "--out", str(tmp_path / "from-url"), "--partitions", "2"]
        args += ["--client-id", "auditor", "--private-key", str(pem), "--key-id", "auditor"]
        args += ["--keep-export", str(tmp_path / "export")]
        if profile == "epic":
            args += ["--group", "all-patients"]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3 status polls" in result.output and "24 therapy visits reviewed" in result.output
    assert len(list((tmp_path / "export").glob("Procedure.*.ndjson"))) > 1
    for name in ("findings.csv", "visits.csv"):
        assert rows(tmp_path / "from-url" / name) == rows(expected / name)


def test_the_sandbox_refuses_exports_it_should(synthetic):
    with running_sandbox("epic", data_dir=synthetic) as ehr:
        ehr.register("auditor", "", jwks={"keys": [KEY.as_dict(private=False)]})
        asked = {"Prefer": "respond-async"}
        group = f"{ehr.fhir}/Group/all-patients/$export"
        assert requests.get(group, headers=asked).status_code == 401
        from smart_launch.backend import BackendServices

        def token(scope):
            return BackendServices(
                f"{ehr.base_url}/oauth/token",
                "auditor",
                KEY.as_pem(private=True),
                scope,
                kid="auditor",
            ).token()

        narrow = {"Authorization": f"Bearer {token('system/Patient.read')}", **asked}
        assert requests.get(group, headers=narrow).status_code == 403
        wide = {"Authorization": f"Bearer {token('system/*.read')}"}
        assert requests.get(group, headers=wide).status_code == 400  # no Prefer: respond-async
        assert requests.get(f"{ehr.fhir}/$export", headers={**wide, **asked}).status_code == 404


def test_the_cli_says_what_failed_in_one_line(tmp_path):
    with running_sandbox("epic") as ehr:
        result = CliRunner().invoke(
            main, ["audit", ehr.fhir, "--group", "nobody", "--out", str(tmp_path / "o")]
        )
    assert result.exit_code == 2
    assert "Bulk export from http://127.0.0.1" in result.output and "Traceback" not in result.output
    assert "401" in result.output or "404" in result.output


def test_keep_export_refuses_a_folder_that_already_holds_ndjson(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "Patient.001.ndjson").write_text("{}\n")
    result = CliRunner().invoke(
        main,
        ["audit", "http://127.0.0.1:9/fhir", "--keep-export", str(kept), "--out", str(tmp_path)],
    )
    assert result.exit_code == 2 and "already holds NDJSON" in result.output
