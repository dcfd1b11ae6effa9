"""Every rule in the registry is documented, cited, in the contract table and tested both ways."""

from __future__ import annotations

import re
from pathlib import Path

from plugin.rules import EVERY_RULE
from plugin.rules.planned import PLANNED_BY_ID
from tests.rules.cases import CASES

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "spec" / "contract.md"
# The contract's rule table, copied for when shared/ is not beside the checkout.
CONTRACT_RULES = {
    "units-exceed-time": "error",
    "units-under-billed": "info",
    "under-8-minutes": "error",
    "missing-minutes": "error",
    "daily-unit-cap": "warning",
    "minutes-overlap": "error",
    "group-overlap": "error",
    "untimed-overlap": "error",
    "total-time-mismatch": "error",
    "missing-discipline-modifier": "error",
    "discipline-modifier-mismatch": "error",
    "missing-assistant-modifier": "error",
    "missing-distinct-modifier": "error",
    "unsupported-distinct-modifier": "error",
    "missing-kx": "error",
    "doc-no-deficit": "error",
    "doc-no-skilled-intervention": "error",
    "doc-no-patient-response": "warning",
    "doc-no-functional-goal": "error",
    "doc-no-objective-measure": "warning",
    "doc-no-progress": "warning",
    "doc-unsigned": "error",
    "doc-no-total-time": "error",
    "supervision-only": "error",
    "code-selection": "warning",
    "cloned-note": "warning",
    "untimed-units-exceed": "error",
    "code-not-covered": "error",
    "unqualified-performer": "error",
    "poc-not-certified": "error",
    "progress-report-overdue": "error",
    "poc-certified-late": "warning",
    "episode-unknown": "warning",
    "kx-threshold-unknown": "warning",
    "reading-incomplete": "warning",
    "ptp-not-bypassable": "error",
    "eval-by-assistant": "error",
    "wrong-discipline-code": "error",
    "untimed-undocumented": "error",
    "reevaluation-not-indicated": "warning",
    "kx-not-indicated": "warning",
}


def contract_rules() -> dict[str, str]:
    if not CONTRACT.is_file():
        return CONTRACT_RULES
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\w+) \|", CONTRACT.read_text(), re.MULTILINE)
    return dict(rows)


def test_contract_table_matches_our_copy():
    assert contract_rules() == CONTRACT_RULES


def test_every_contract_rule_is_registered_with_its_severity():
    """Built rules match the contract; the rest are listed in plugin/rules/planned.py."""
    registered = {r.id: r.severity.value for r in EVERY_RULE}
    for rule_id, severity in contract_rules().items():
        if rule_id in PLANNED_BY_ID:
            continue
        assert registered.get(rule_id) == severity, f"{rule_id}: build it or list it as planned"


def test_planned_rules_are_in_the_contract_and_not_built():
    contract = contract_rules()
    registered = {r.id for r in EVERY_RULE}
    for planned in PLANNED_BY_ID.values():
        assert contract.get(planned.id) == planned.severity, planned.id
        assert planned.id not in registered, f"{planned.id} is built: remove it from planned.py"
        assert planned.issue > 0 and planned.what, planned.id


def test_rule_ids_unique_and_kebab_case():
    ids = [r.id for r in EVERY_RULE]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)


def test_every_rule_is_documented_with_its_source():
    for rule in EVERY_RULE:
        assert rule.title, f"{rule.id} has no docstring"
        assert len(rule.doc.split()) >= 25, f"{rule.id} docstring too thin"
        assert "Source" in rule.doc, f"{rule.id} docstring names no source"
        assert rule.citation.strip(), f"{rule.id} has no citation"


def test_every_rule_has_pass_and_fail_cases():
    for rule in EVERY_RULE:
        cases = CASES.get(rule.id, {})
        assert cases.get("pass"), f"{rule.id} has no pass case"
        assert cases.get("fail"), f"{rule.id} has no fail case"
    assert set(CASES) == {r.id for r in EVERY_RULE}
