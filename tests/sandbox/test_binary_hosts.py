"""A note's Binary on another host than the FHIR base (as Oracle Health's published examples put
it) is read only when the EHR list names that host (``binary_hosts``): the token goes to no host
that is not named, and a Binary left unread is a reading note naming the host, not the patient.

The sandbox serves such a Binary under its other loopback name (localhost instead of 127.0.0.1):
another host to the client. Every request is recorded with its Host and Authorization headers.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server

from plugin.cli import main
from plugin.ehr import fetch_visit
from plugin.ehr.binaries import _binary_id
from plugin.review import review_bundle
from plugin.serving import running
from sandbox.app import create_app
from sandbox.seed import build_sandbox
from smart_launch import FhirClient, make_session
from smart_launch.registry import RegistryError, load_registry
from tests.loopback import running_app, running_sandbox

VENDOR = Path(__file__).resolve().parents[2] / "fixtures" / "vendor"
FILE = "oracle_binary_host.json"
ENCOUNTER = "oracle-binary-host-enc-1"
PATIENT = "oracle-binary-host-pat-1"
TOKEN = "tok-binary-hosts"


class Recorder:
    """WSGI middleware: (Host, path, Authorization) of every request."""

    def __init__(self, app) -> None:
        self.app, self.seen = app, []

    def __call__(self, environ, start_response):
        self.seen.append(
            (environ.get("HTTP_HOST"), environ.get("PATH_INFO"), environ.get("HTTP_AUTHORIZATION"))
        )
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def ehr(tmp_path_factory):
    data = tmp_path_factory.mktemp("binary-hosts")
    shutil.copy(VENDOR / FILE, data / FILE)
    server = make_server("127.0.0.1", 0, lambda e, s: None, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    recorder = Recorder(create_app(build_sandbox("oracle", data, True, base), base))
    server.app = recorder
    with running([server]):
        yield base, f"localhost:{server.server_port}", recorder


def fetch(ehr, hosts: tuple[str, ...]) -> tuple[dict, list]:
    base, _, recorder = ehr
    recorder.seen.clear()
    client = FhirClient(f"{base}/fhir", token=lambda: TOKEN, session=make_session(retries=0))
    return fetch_visit(client, ENCOUNTER, binary_hosts=hosts), list(recorder.seen)


def test_a_binary_on_a_host_not_named_is_not_read_and_gets_no_token(ehr):
    _, other, _ = ehr
    fetched, seen = fetch(ehr, ())
    assert not [s for s in seen if s[0] == other], "no request at all to the other host"
    assert all(host.startswith("127.0.0.1:") for host, _, _ in seen)
    report = review_bundle(fetched, encounter_id=ENCOUNTER)
    assert not report.visit.note_text.strip()
    said = [n for n in report.visit.notes if "not read, no token sent" in n]
    assert len(said) == 1 and f"a Binary on {other}" in said[0], report.visit.notes
    assert PATIENT not in said[0]


def test_a_binary_on_a_named_host_is_read_with_the_token(ehr):
    _, other, _ = ehr
    fetched, seen = fetch(ehr, (other.upper(),))  # host names match whatever their case
    to_other = [s for s in seen if s[0] == other]
    assert [(path, auth) for _, path, auth in to_other] == [
        ("/fhir/Binary/oracle-binary-host-R-note", f"Bearer {TOKEN}")
    ]
    over_http = review_bundle(fetched, encounter_id=ENCOUNTER)
    from_file = review_bundle(json.loads((VENDOR / FILE).read_text()), encounter_id=ENCOUNTER)
    assert over_http.visit.note_text == from_file.visit.note_text
    assert "Total timed code minutes: 39" in over_http.visit.note_text
    assert over_http.verdict == from_file.verdict == "supported"


def test_a_named_host_is_not_reached_over_plain_http_from_an_https_ehr():
    base = "https://fhir-oracle.example.org/r4/t/"
    url = "http://fhir-ehr.oracle.example.org/r4/t/Binary/R-1"
    hosts = ("fhir-ehr.oracle.example.org",)
    rid, where, why = _binary_id(url, base, hosts)
    assert rid is None and where is None
    assert "over http, not https" in why
    rid, where, why = _binary_id(url.replace("http:", "https:"), base, hosts)
    assert (rid, where, why) == ("R-1", "https://fhir-ehr.oracle.example.org/r4/t", None)
    # a url that only looks like the named host (userinfo before another host) is refused
    trick = "https://fhir-ehr.oracle.example.org@evil.example/r4/t/Binary/R-1"
    assert _binary_id(trick, base, hosts)[0] is None


def write_ehrs(path: Path, issuer: str, hosts: list[str]) -> Path:
    path.write_text(
        "[[ehr]]\n"
        'name = "sandbox"\n'
        f'issuer = "{issuer}"\n'
        'client_id = "unitguard"\n'
        f"binary_hosts = {json.dumps(hosts)}\n"
    )
    return path


def test_review_fhir_reads_binary_hosts_from_the_ehr_list(ehr, tmp_path):
    base, other, _ = ehr
    args = ["review", "--fhir", f"{base}/fhir", "--encounter", ENCOUNTER, "--format", "json"]
    named = write_ehrs(tmp_path / "named.toml", f"{base}/fhir", [other])
    result = CliRunner().invoke(main, [*args, "--ehrs", str(named)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verdict"] == "supported"

    unnamed = write_ehrs(tmp_path / "unnamed.toml", f"{base}/fhir", [])
    result = CliRunner().invoke(main, [*args, "--ehrs", str(unnamed)])
    notes = json.loads(result.stdout)["notes"]
    assert any(f"a Binary on {other}" in n for n in notes), notes


def test_the_ehr_list_refuses_a_binary_host_that_is_not_a_host_name(tmp_path):
    bad = write_ehrs(tmp_path / "bad.toml", "https://ehr.example/fhir", ["https://docs.example"])
    with pytest.raises(RegistryError, match="binary_hosts.*not a host name"):
        load_registry(bad)
    good = write_ehrs(tmp_path / "good.toml", "https://ehr.example/fhir", ["Docs.Example:8443"])
    assert load_registry(good).ehrs[0].binary_hosts == ("docs.example:8443",)
    example = load_registry(Path(__file__).resolve().parents[2] / "smart_launch/ehrs.example.toml")
    oracle = next(e for e in example.ehrs if "cerner" in e.issuer)
    assert oracle.binary_hosts == ("fhir-ehr.cerner.com",)


@pytest.mark.parametrize("named", [True, False])
def test_the_app_reads_the_binary_hosts_of_the_launching_ehr(named, tmp_path):
    """From the chart's launch to the review page: the EHR list's binary_hosts for the EHR that
    launched the app decide whether the note on the other host is read."""
    shutil.copy(VENDOR / FILE, tmp_path / FILE)
    with running_sandbox("oracle", data_dir=tmp_path) as ehr:
        hosts = (ehr.base_url.replace("http://127.0.0.1:", "localhost:"),) if named else ()
        with running_app(ehr, binary_hosts=hosts) as app:
            ehr.register("unitguard", f"{app}/callback")
            browser = requests.Session()
            frame = browser.get(f"{ehr.base_url}/chart/launch/{ENCOUNTER}", timeout=30)
            src = re.search(r'<iframe id="app" title="unitguard" src="([^"]+)"', frame.text)
            page = browser.get(src.group(1).replace("&amp;", "&"), timeout=30)
    assert page.status_code == 200, page.text[:500]
    assert ('data-verdict="supported"' in page.text) is named
