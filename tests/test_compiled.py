"""The compiled review path (setup.py): what runs, that it says the same, and no stale code.

setup.py compiles the review's modules with Cython from the same source. These tests check that
CI really runs them compiled (a build that quietly fell back to Python would lose the speed and
hide it), that compiled and Python reviews are byte-identical on the digest corpus, and that an
edited module runs from its source instead of an extension compiled from the old text.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import plugin

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "plugin" / "_compiled.json"
EXTENSIONS = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _setup_list() -> list[str]:
    """setup.py's COMPILED list as module names, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    paths = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "COMPILED"
    )
    return [p.removesuffix(".py").replace("/", ".") for p in paths]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "UNITGUARD_PURE"}
    env.update(extra)
    return env


def test_setup_lists_only_modules_that_exist_and_do_no_io():
    names = _setup_list()
    assert len(names) >= 25
    for name in names:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name
        # The web, CLI, EHR client and stores stay Python: they wait on I/O, not on the CPU.
        assert not name.startswith(("plugin.web", "plugin.ehr", "plugin.tasks", "plugin.cli"))


@pytest.mark.skipif(
    os.environ.get("CI") != "true" and not MANIFEST.exists(),
    reason="this checkout is installed as pure Python (no plugin/_compiled.json); CI requires it",
)
def test_every_listed_module_runs_compiled_unless_its_source_changed():
    assert MANIFEST.exists(), "setup.py compiled nothing: is Cython or a C compiler missing?"
    compiled = json.loads(MANIFEST.read_text())
    assert sorted(compiled) == sorted(_setup_list()), "some modules failed to compile"
    if os.environ.get("UNITGUARD_PURE") == "1":
        pytest.skip("UNITGUARD_PURE=1: this run asked for the Python sources")
    for name in compiled:
        module = importlib.import_module(name)
        if name in plugin.STALE_COMPILED:
            assert module.__file__.endswith(".py"), name
        else:
            assert module.__file__.endswith(EXTENSIONS), f"{name} runs from {module.__file__}"


@pytest.mark.skipif(not MANIFEST.exists(), reason="installed as pure Python: nothing to compare")
def test_compiled_and_python_reviews_are_byte_identical(tmp_path):
    """Every report of a digest corpus (benchmark visits, every fixture Encounter, an audit),
    once from the Python sources and once compiled."""
    script = str(ROOT / "benchmarks" / "review_digest.py")
    saved = tmp_path / "python.json"
    small = ["--visits", "150", "--audit-visits", "40"]
    subprocess.run(
        [sys.executable, script, *small, "--write", str(saved)],
        env=_env(UNITGUARD_PURE="1"),
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, script, *small, "--check", str(saved)],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reports identical" in done.stdout


def _copy_package(into: Path) -> Path:
    shutil.copytree(ROOT / "plugin", into / "plugin", ignore=shutil.ignore_patterns("__pycache__"))
    return into / "plugin"


def _file_of(tree: Path, module: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
        cwd=tree,
        env=_env(PYTHONPATH=str(tree), **env),
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.mark.skipif(not MANIFEST.exists(), reason="installed as pure Python: nothing is stale")
def test_an_edited_module_runs_from_its_source_not_the_stale_extension(tmp_path):
    package = _copy_package(tmp_path)
    assert _file_of(tmp_path, "plugin.rules.units").stdout.strip().endswith(EXTENSIONS)

    with (package / "rules" / "units.py").open("a") as fh:
        fh.write("\nEDITED = True\n")
    done = _file_of(tmp_path, "plugin.rules.units")
    assert done.stdout.strip().endswith("units.py")
    assert "plugin.rules.units" in done.stderr and "pip install" in done.stderr
    # The other modules still run compiled.
    assert _file_of(tmp_path, "plugin.rules.kx").stdout.strip().endswith(EXTENSIONS)


@pytest.mark.skipif(not MANIFEST.exists(), reason="installed as pure Python: nothing to choose")
def test_pure_switch_and_an_unreadable_manifest_run_every_source(tmp_path):
    package = _copy_package(tmp_path)
    assert (
        _file_of(tmp_path, "plugin.fhir.extract", UNITGUARD_PURE="1")
        .stdout.strip()
        .endswith("extract.py")
    )
    (package / "_compiled.json").write_text("{not json")
    done = _file_of(tmp_path, "plugin.fhir.extract")
    assert done.stdout.strip().endswith("extract.py")
    assert "unreadable" in done.stderr
