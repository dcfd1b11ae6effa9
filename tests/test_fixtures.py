"""Every shipped fixture visit reviews as its manifest (fixtures/expected.json) says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugin.review import review_bundle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MANIFEST = json.loads((FIXTURES / "expected.json").read_text())
CASES = MANIFEST if isinstance(MANIFEST, list) else MANIFEST.get("cases", [])


def test_there_are_at_least_fifteen_fixture_visits():
    assert len({c["file"] for c in CASES}) >= 15
    for case in CASES:
        assert (FIXTURES / case["file"]).is_file(), case["file"]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['file']}-{c.get('method', 'cms')}" for c in CASES]
)
def test_fixture_review(case):
    bundle = json.loads((FIXTURES / case["file"]).read_text())
    report = review_bundle(
        bundle, encounter_id=case.get("encounter"), method=case.get("method"), source=case["file"]
    )
    fired = {f.rule for f in report.findings}
    summary = [(f.rule, f.message) for f in report.findings]
    for rule_id in case.get("must_fire", []):
        assert rule_id in fired, f"{rule_id} missing; findings: {summary}"
    for rule_id in case.get("must_not_fire", []):
        assert rule_id not in fired, f"{rule_id} fired; findings: {summary}"
    assert report.verdict == case["verdict"], summary
    services = {s.code: s for s in report.services}
    for code, want in case.get("services", {}).items():
        got = services[code]
        assert (got.billed_units, got.supported_units) == (
            want["billed_units"],
            want["supported_units"],
        ), code
