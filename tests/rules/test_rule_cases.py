"""Every rule fires on its fail cases and stays silent on its pass cases."""

from __future__ import annotations

import pytest

from plugin.review import review_bundle
from tests.rules.cases import CASES

PARAMS = [
    pytest.param(rule_id, kind == "fail", build, id=f"{rule_id}-{kind}-{n}-{build.__name__}")
    for rule_id, kinds in CASES.items()
    for kind, builds in kinds.items()
    for n, build in enumerate(builds)
]


@pytest.mark.parametrize(("rule_id", "should_fire", "build"), PARAMS)
def test_rule_case(rule_id, should_fire, build):
    bundle, options = build()
    report = review_bundle(bundle, **options)
    fired = [f for f in report.findings if f.rule == rule_id]
    summary = [(f.rule, f.message) for f in report.findings]
    if should_fire:
        assert fired, f"{rule_id} did not fire; findings: {summary}"
        for finding in fired:
            assert finding.message and finding.fix and finding.citation
    else:
        assert not fired, f"{rule_id} fired unexpectedly: {[f.message for f in fired]}"
