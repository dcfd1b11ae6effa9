"""Where the browser tests put their screenshots: a temporary folder, so a test run leaves the
tree as it found it. `docs/refresh-pictures` sets UNITGUARD_SCREENSHOTS=docs to refresh the
pictures in docs/ on purpose."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    chosen = os.environ.get("UNITGUARD_SCREENSHOTS")
    if chosen:
        folder = Path(chosen)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")
