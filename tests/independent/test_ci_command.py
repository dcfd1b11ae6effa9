"""CI installs the Node.js side of tests/independent before pytest, with the README's command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_command_with_npm_ci_before_pytest():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"what `\.ci/run` runs.*?```sh\n(.+?)\n```", readme, re.S)
    assert block, "the README names no test command"
    command = block.group(1)
    assert command in (ROOT / ".ci" / "run").read_text()
    steps = command.split(" && ")
    assert "npm ci --prefix tests/independent/js" in steps
    pytest = next(i for i, step in enumerate(steps) if step.startswith("python -m pytest -q"))
    assert steps.index("npm ci --prefix tests/independent/js") < pytest
    lock = ROOT / "tests" / "independent" / "js" / "package-lock.json"
    assert lock.is_file(), "npm ci needs the committed package-lock.json"
