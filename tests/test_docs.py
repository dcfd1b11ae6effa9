"""The project's own docs: nothing links outside the repository, docs/rules.md is what the
registry says, and docs/settings.md names every UNITGUARD_* variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from plugin.rules.catalogue import render

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_there_are_docs_to_check():
    names = {path.name for path in DOCS}
    assert {"README.md", "cli.md", "rules.md", "settings.md", "deploy.md"} <= names


def test_no_link_in_the_readme_or_docs_leaves_the_repository():
    for path in DOCS:
        for target in LINK.findall(path.read_text()):
            where = f"{path.relative_to(ROOT)} links {target}"
            assert "://" not in target and not target.startswith(("/", "mailto:")), where
            file = target.split("#")[0]
            if not file:
                continue  # a section of the same page
            resolved = (path.parent / file).resolve()
            assert resolved.is_relative_to(ROOT), where
            assert resolved.exists(), f"{where}, which does not exist"


def test_docs_rules_md_is_generated_from_the_registry():
    current = (ROOT / "docs/rules.md").read_text()
    assert current == render(), (
        "docs/rules.md is stale: python -m plugin.rules.catalogue > docs/rules.md"
    )


def test_every_rule_id_is_in_docs_rules_md():
    from plugin.rules import EVERY_RULE

    text = (ROOT / "docs/rules.md").read_text()
    for rule in EVERY_RULE:
        assert f"## `{rule.id}`" in text


def test_docs_settings_md_names_every_variable_the_code_reads():
    documented = set(
        re.findall(r"UNITGUARD_[A-Z0-9_]*[A-Z0-9]", (ROOT / "docs/settings.md").read_text())
    )
    read = set()
    for package in ("plugin", "smart_launch", "sandbox"):
        for path in (ROOT / package).rglob("*.py"):
            read |= set(re.findall(r"UNITGUARD_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert len(read) > 20
    assert read - documented == set()
