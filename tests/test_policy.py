"""Policy data: every table carries its source and dates; the CMS PTP import; payer methods."""

from __future__ import annotations

import zipfile
from datetime import date

import pytest
from click.testing import CliRunner

from plugin.cli import main
from plugin.errors import InputError
from plugin.policy import load_policy
from plugin.policy.ncci import import_ptp_file
from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder

HEADER = (
    "CPT only copyright 2026 American Medical Association. All rights reserved.\r\n\r\n"
    "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\t"
    "Deletion Date *=no data\tModifier 0=not allowed 1=allowed 9=not applicable\t"
    "PTP Edit Rationale\r\n"
)
# Synthetic rows shaped like CMS's file (not real edits).
ROWS = [
    "97530\t97112\t\t20260101\t*\t1\tMisuse of column two code with column one code",
    "97110\t97112\t\t20200101\t20250101\t1\tDeleted before 2026",
    "99213\t36415\t\t20150101\t*\t1\tNot a therapy pair",
    "97140\t97124\t\t19960101\t*\t0\tMutually exclusive procedures",
    "bad\trow",
]


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    load_policy.cache_clear()
    yield
    load_policy.cache_clear()


def test_every_policy_table_has_version_source_and_effective_date():
    policy = load_policy()
    names = {p.name for p in policy.provenance}
    assert names == {
        "units",
        "codes",
        "limits",
        "kx",
        "assistant",
        "payers",
        "narrative",
        "mpfs",
        "coverage",
        "episode",
    }
    for item in policy.provenance:
        assert item.version and item.source and isinstance(item.effective_from, date), item.name


def test_kx_thresholds_by_year():
    policy = load_policy()
    assert {y: (k.pt_slp, k.ot) for y, k in policy.kx_years.items() if y >= 2024} == {
        2024: (2330.0, 2330.0),
        2025: (2410.0, 2410.0),
        2026: (2480.0, 2480.0),
    }
    assert policy.review_threshold == 3000.0
    assert all(k.source for k in policy.kx_years.values())


def test_starter_ptp_pairs_carry_sources():
    policy = load_policy()
    edits = policy.ptp_edits_for(date(2026, 3, 4))
    assert ("97150", "97112") in edits
    assert all(e.source for e in policy.ptp)
    # CMS's own worked examples bill 97112 beside 97110/97140/97116 without 59.
    for pair in [("97110", "97112"), ("97112", "97110"), ("97140", "97112"), ("97116", "97112")]:
        assert pair not in edits


def test_payer_method_table():
    policy = load_policy()
    assert policy.method_for_payer("Medicare Part B") == "cms"
    assert policy.method_for_payer("Highmark BCBS") == "cms"
    assert policy.method_for_payer(None) == policy.default_method


def test_import_cms_ptp_text_file(tmp_path):
    source = tmp_path / "ccipra-v321r0-f1.txt"
    source.write_text(HEADER + "\r\n".join(ROWS), encoding="latin-1")
    result = import_ptp_file(source, tmp_path / "policy")
    assert (result.read, result.kept, result.skipped) == (4, 3, 3)
    policy = load_policy(str(tmp_path / "policy"))
    edits = policy.ptp_edits_for(date(2026, 3, 4))
    assert edits[("97530", "97112")].modifier_indicator == "1"
    assert ("97110", "97112") not in edits  # deleted 2025-01-01
    assert ("97110", "97112") in policy.ptp_edits_for(date(2024, 6, 1))
    assert ("99213", "36415") not in edits  # not a therapy pair


def test_import_from_zip_through_the_cli(tmp_path):
    archive = tmp_path / "ptp.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ccipra-v321r0-f1.txt", HEADER + "\r\n".join(ROWS[:2]))
        zf.writestr("ccipra-v321r0-f2.txt", HEADER + "\r\n".join(ROWS[2:4]))
        zf.writestr("readme.pdf", b"%PDF")
    result = CliRunner().invoke(
        main, ["policy", "import-ncci", str(archive), "--into", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    assert "imported 3 PTP edits (4 read" in result.output


def test_imported_pair_drives_the_rule(tmp_path, monkeypatch):
    source = tmp_path / "ptp.txt"
    source.write_text(HEADER + ROWS[0], encoding="latin-1")
    import_ptp_file(source, tmp_path / "policy")
    monkeypatch.setenv("UNITGUARD_POLICY_DIR", str(tmp_path / "policy"))
    load_policy.cache_clear()
    b = VisitBuilder()
    b.proc("97530", "09:00", "09:20", note="Functional transfers", goals=("goal-9",))
    b.proc("97112", "09:20", "09:40")
    b.line("97530", 1)
    b.line("97112", 1)
    fired = {f.rule for f in review_bundle(b.bundle()).findings}
    assert "missing-distinct-modifier" in fired


def test_import_rejects_a_file_with_no_edits(tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("nothing to see here\n")
    with pytest.raises(InputError, match="no PTP edit rows"):
        import_ptp_file(source, tmp_path / "p")
    result = CliRunner().invoke(
        main, ["policy", "import-ncci", str(source), "--into", str(tmp_path / "p")]
    )
    assert result.exit_code == 2 and "no PTP edit rows" in result.stderr
