"""Each vendor-shaped visit (fixtures/vendor), served by the sandbox profile of its source and
read with the app's fetch (Binary notes included, one on another host too when the EHR list
names it), reviews exactly like the file; and ``unitguard review --fhir`` is that same fetch
(contract section 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin.cli import main
from plugin.ehr import fetch_visit
from plugin.fhir.codemap import load_code_map
from plugin.report import to_dict
from plugin.review import review_bundle
from smart_launch import FhirClient, make_session
from tests.loopback import running_sandbox

VENDOR = Path(__file__).resolve().parents[2] / "fixtures" / "vendor"
CASES = json.loads((VENDOR / "expected.json").read_text())["cases"]
CODE_MAP = load_code_map(VENDOR / "epic_code_map.csv")
BILLING = {
    "units-exceed-time",
    "units-under-billed",
    "missing-minutes",
    "under-8-minutes",
    "missing-discipline-modifier",
    "missing-kx",
    "targeted-review-threshold",
    "kx-threshold-unknown",
}


# The sandbox profile that serves each source's files: Synthea's and HL7's shapes need a server
# that serves Claim by patient, which neither vendor does.
PROFILE = {"epic": "epic", "oracle": "oracle", "synthea": "full", "hl7": "full"}


@pytest.fixture(scope="module", params=["epic", "oracle", "full"])
def vendor_sandbox(request):
    with running_sandbox(request.param, data_dir=VENDOR, open_access=True) as ehr:
        yield request.param, ehr


def other_name(ehr) -> str:
    """The sandbox's other loopback host, where it serves a Binary a file keeps on another host
    than its base: the host the EHR list must name (binary_hosts)."""
    return ehr.base_url.replace("http://127.0.0.1:", "localhost:")


def comparable(report) -> dict:
    """The review as the contract's JSON, without the reading notes (they say how it was read:
    a server's own notes, the Binary fetched, differ by design)."""
    out = to_dict(report)
    out.pop("notes")
    return out


def test_vendor_visits_over_http_review_like_their_files(vendor_sandbox):
    """Visit by visit: the whole review (findings with their messages, services, money, payer)
    is the same from the file and over HTTP from the sandbox in its source's profile."""
    profile, ehr = vendor_sandbox
    client = FhirClient(ehr.fhir, session=make_session(retries=0))
    cases = [c for c in CASES if PROFILE[c["vendor"]] == profile]
    assert len(cases) >= (2 if profile == "full" else 4)
    for case in cases:
        bundle = json.loads((VENDOR / case["file"]).read_text())
        fetched = fetch_visit(client, case["encounter"], binary_hosts=(other_name(ehr),))
        from_file = review_bundle(bundle, encounter_id=case["encounter"], code_map=CODE_MAP)
        over_http = review_bundle(fetched, encounter_id=case["encounter"], code_map=CODE_MAP)
        assert over_http.visit.note_text.strip(), case["file"]  # the Binary note was fetched
        assert over_http.visit.note_text == from_file.visit.note_text, case["file"]
        if profile == "epic" and over_http.visit.billed is None:
            # Epic exposes no Claim to apps: the billing rules cannot run over HTTP
            file_rules = {(f.rule, f.code) for f in from_file.findings if f.rule not in BILLING}
            assert {(f.rule, f.code) for f in over_http.findings} == file_rules, case["file"]
            minutes = {s.code: s.minutes for s in from_file.services}
            assert {s.code: s.minutes for s in over_http.services} == minutes, case["file"]
            continue
        assert comparable(over_http) == comparable(from_file), case["file"]
        assert (over_http.visit.payer, over_http.visit.medicare) == (
            from_file.visit.payer,
            from_file.visit.medicare,
        ), case["file"]


def test_review_fhir_is_the_apps_fetch(vendor_sandbox):
    profile, ehr = vendor_sandbox
    case = next(c for c in CASES if PROFILE[c["vendor"]] == profile and c["verdict"] == "supported")
    result = CliRunner().invoke(
        main,
        ["review", "--fhir", ehr.fhir, "--encounter", case["encounter"], "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["encounter"] == f"Encounter/{case['encounter']}"
    assert out["verdict"] == "supported"


def test_review_fhir_of_an_unknown_encounter_is_exit_2(vendor_sandbox):
    _, ehr = vendor_sandbox
    result = CliRunner().invoke(main, ["review", "--fhir", ehr.fhir, "--encounter", "nope"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.stderr.startswith("unitguard: ")
