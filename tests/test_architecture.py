"""Import-direction guard: rules stay pure; smart_launch stays framework-free and plugin-free;
the sandbox EHR stands alone."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_there_is_something_to_check():
    assert len(modules("plugin/rules")) >= 5


def test_rules_import_only_stdlib_and_pure_plugin_modules():
    allowed_plugin = (
        "plugin.domain",
        "plugin.rules",
        "plugin.units",
        "plugin.narrative",
        "plugin.policy.model",
    )
    for path in modules("plugin/rules") + [
        ROOT / "plugin/domain.py",
        ROOT / "plugin/units.py",
        ROOT / "plugin/narrative.py",
        ROOT / "plugin/policy/model.py",
    ]:
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "plugin":
                assert name.startswith(allowed_plugin), f"{path.name} imports {name}"
            else:
                assert top in STDLIB or top == "__future__", f"{path.name} imports {name}"


def test_fhir_extraction_does_not_import_web_rules_or_cli():
    for path in modules("plugin/fhir"):
        for name in imports_of(path):
            assert not name.startswith(
                ("flask", "plugin.web", "plugin.rules", "plugin.cli", "click", "smart_launch")
            ), f"{path.name} imports {name}"


def test_smart_launch_is_framework_free_and_knows_nothing_of_plugin():
    for path in modules("smart_launch"):
        for name in imports_of(path):
            assert not name.startswith("plugin"), f"{path.name} imports {name}"
            if path.name != "flask.py":
                assert not name.startswith("flask"), f"{path.name} imports {name}"


def test_sandbox_stands_alone_like_the_ehr_it_imitates():
    """The sandbox EHR imports nothing of unitguard (the tests wire the two together)."""
    for path in modules("sandbox"):
        for name in imports_of(path):
            assert not name.startswith(("plugin", "smart_launch", "tests")), (
                f"{path.name} imports {name}"
            )
