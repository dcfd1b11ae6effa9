"""`unitguard policy import-mue|import-mpfs|show` from the command line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from plugin.cli import main
from plugin.policy import load_policy

DATA = Path(__file__).parent / "data" / "cms"
MUE = DATA / "MCR_MUE_PractitionerServices_Eff_07-01-2026.excerpt.csv"


@pytest.fixture(autouse=True)
def _fresh_policy_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITGUARD_POLICY_DIR", str(tmp_path / "policy"))
    load_policy.cache_clear()
    yield
    load_policy.cache_clear()


def test_import_mue_then_show_by_date(tmp_path):
    runner = CliRunner()
    done = runner.invoke(main, ["policy", "import-mue", str(MUE)])
    assert done.exit_code == 0, done.output
    assert "imported 4 MUEs (5 read) in force from 2026-07-01" in done.output
    before = runner.invoke(main, ["policy", "show", "--date", "2026-06-30"])
    after = runner.invoke(main, ["policy", "show", "--date", "2026-07-01"])
    assert "practitioner MUEs: shipped excerpt, from 2026-01-01" in before.output
    assert "practitioner MUEs: imported, from 2026-07-01: MCR_MUE_Practitioner" in after.output
    assert "PFS relative values: shipped excerpt, from 2025-10-01: CMS RVU25D.zip" in after.output


def test_import_mpfs_zip_with_locality(tmp_path):
    archive = tmp_path / "RVU25D.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(DATA / "PPRRVU2025_Oct.excerpt.csv", "PPRRVU2025_Oct.csv")
        zf.write(DATA / "GPCI2025.excerpt.csv", "GPCI2025.csv")
    done = CliRunner().invoke(
        main, ["policy", "import-mpfs", str(archive), "--locality", "01112-05"]
    )
    assert done.exit_code == 0, done.output
    assert "imported 8 RVU rows (9 read) in force from 2025-10-01" in done.output
    assert "imported 3 GPCI 2025 localities; amounts for locality 01112-05" in done.output
    shown = CliRunner().invoke(main, ["policy", "show", "--date", "2025-11-03"])
    assert "PFS relative values: imported, from 2025-10-01: RVU25D.zip" in shown.output
    assert "(01112-05)" in shown.output


def test_a_refused_file_is_one_line_on_stderr_and_exit_2(tmp_path):
    bad = tmp_path / "RVU25D.zip"
    bad.write_text("not a zip")
    done = CliRunner().invoke(main, ["policy", "import-mpfs", str(bad)])
    assert done.exit_code == 2
    assert done.stderr.strip().count("\n") == 0 and "not a zip archive" in done.stderr
    assert "Traceback" not in done.output
