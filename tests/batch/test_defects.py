"""Each defect the synthetic audit injects makes exactly its own rule fire on the visit."""

from __future__ import annotations

import pytest

from plugin.batch.defects import DEFECTS, HISTORY
from plugin.batch.synth import _measured_before
from plugin.review import review_bundle
from plugin.synthetic.visit import clean_visit

DAY = "2026-06-10"
# Defects that need other visits (earlier treatment days, another patient in the slot): the
# audit test checks those against truth.csv.
ALONE = sorted(
    rule for rule in DEFECTS if rule not in HISTORY and rule != "concurrent-therapy-overlap"
)


def _visit():
    builder = clean_visit(day=DAY)
    _measured_before(builder, DAY)
    return builder


def test_the_clean_baseline_has_no_finding():
    assert review_bundle(_visit().bundle()).findings == ()


@pytest.mark.parametrize("rule_id", ALONE)
def test_each_injection_fires_exactly_its_own_rule(rule_id):
    builder = _visit()
    DEFECTS[rule_id](builder)
    fired = sorted({f.rule for f in review_bundle(builder.bundle()).findings})
    assert fired == [rule_id]


def test_the_new_rules_of_issue_23_are_injected():
    new = {
        "ptp-not-bypassable",
        "eval-by-assistant",
        "wrong-discipline-code",
        "untimed-undocumented",
        "reevaluation-not-indicated",
        "kx-not-indicated",
    }
    assert new <= set(ALONE)
