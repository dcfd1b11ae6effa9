"""Every rule fires on its fail cases and stays silent on its pass cases."""

from __future__ import annotations

import pytest

from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.rules.batch import review_slots, slots_of
from tests.rules.cases import CASES

PARAMS = [
    pytest.param(rule_id, kind == "fail", build, id=f"{rule_id}-{kind}-{n}-{build.__name__}")
    for rule_id, kinds in CASES.items()
    for kind, builds in kinds.items()
    for n, build in enumerate(builds)
]


def _batch_findings(bundles: list[dict]) -> list:
    """A batch case: review each patient's visit, then the batch rules over all their slots."""
    policy = load_policy()
    slots = []
    for bundle in bundles:
        visit = review_bundle(bundle, encounter_id=encounter_of(bundle)).visit
        slots += slots_of(visit, policy)
    return [finding for _, finding in review_slots(slots, policy)]


def encounter_of(bundle: dict) -> str:
    return next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )


@pytest.mark.parametrize(("rule_id", "should_fire", "build"), PARAMS)
def test_rule_case(rule_id, should_fire, build):
    bundle, options = build()
    if isinstance(bundle, list):
        findings = _batch_findings(bundle)
    else:
        findings = review_bundle(bundle, **options).findings
    fired = [f for f in findings if f.rule == rule_id]
    summary = [(f.rule, f.message) for f in findings]
    if should_fire:
        assert fired, f"{rule_id} did not fire; findings: {summary}"
        for finding in fired:
            assert finding.message and finding.fix and finding.citation
    else:
        assert not fired, f"{rule_id} fired unexpectedly: {[f.message for f in fired]}"
