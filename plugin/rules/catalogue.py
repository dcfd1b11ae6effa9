"""docs/rules.md, written from the registry: every rule id with its severity, what it checks
(the rule's own docstring) and its citation, then the contract's ids not built yet.

Regenerate after adding or changing a rule (tests/test_docs.py fails until you do):
    python -m plugin.rules.catalogue > docs/rules.md
"""

from __future__ import annotations

import inspect
import sys

from plugin.rules import ALL_RULES, EVERY_RULE
from plugin.rules.planned import PLANNED_RULES

HEADER = """# Rule ids

Every finding's `rule` (in `--format json`, `findings.csv`, the Task and the pages' `data-rule`)
is one of these ids. Ids are stable: a retired id is never reused. Severity `error` makes a visit
`unsupported`, `warning` makes it `needs-review`, `info` changes nothing. "Billing" rules compare
billed lines, so they stay silent before charges exist.

This file is generated from the rule registry (`plugin/rules/__init__.py`) by
`python -m plugin.rules.catalogue > docs/rules.md`; `tests/test_docs.py` checks it is current.
"""


def _text(doc: str) -> str:
    """The docstring as one paragraph per blank-line-separated block."""
    blocks = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(block.split()) for block in blocks if block.strip())


def render() -> str:
    lines = [HEADER]
    batch = {rule.id for rule in EVERY_RULE} - {rule.id for rule in ALL_RULES}
    lines.append(f"{len(EVERY_RULE)} rules: {len(ALL_RULES)} per visit, {len(batch)} over many")
    lines.append("visits at once (`unitguard audit` only).\n")
    lines.append("| id | severity | kind | citation |")
    lines.append("| --- | --- | --- | --- |")
    for rule in EVERY_RULE:
        kind = "audit only" if rule.id in batch else ("billing" if rule.billing else "visit")
        lines.append(f"| `{rule.id}` | {rule.severity} | {kind} | {rule.citation} |")
    lines.append("")
    for rule in EVERY_RULE:
        lines.append(f"## `{rule.id}`\n")
        lines.append(f"Severity **{rule.severity}**. Citation: {rule.citation}.\n")
        lines.append(_text(rule.doc) + "\n")
    lines.append("## Planned\n")
    lines.append("Ids the interface contract names that are not built yet, with the issue that")
    lines.append("builds each (`plugin/rules/planned.py`).\n")
    lines.append("| id | severity | issue | what it will check |")
    lines.append("| --- | --- | --- | --- |")
    for planned in PLANNED_RULES:
        lines.append(f"| `{planned.id}` | {planned.severity} | {planned.issue} | {planned.what} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
