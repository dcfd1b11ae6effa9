"""The importers of CMS's MUE, RVU and GPCI files, on excerpts in CMS's layout (tests/data/cms),
plain and zipped; their refusals; and the dates they keep, as ``policy show`` and the rules
read them."""

from __future__ import annotations

import zipfile
from datetime import date
from pathlib import Path

import pytest

from plugin.errors import InputError
from plugin.policy import load_policy
from plugin.policy.mpfs_file import import_mpfs_file
from plugin.policy.mue_file import import_mue_file
from plugin.policy.ncci import import_ptp_file
from plugin.policy.show import describe, in_force
from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder

DATA = Path(__file__).parent / "data" / "cms"
MUE = DATA / "MCR_MUE_PractitionerServices_Eff_07-01-2026.excerpt.csv"
RVU_CSV = DATA / "PPRRVU2025_Oct.excerpt.csv"
RVU_TXT = DATA / "PPRRVU2025_Oct.excerpt.txt"
GPCI = DATA / "GPCI2025.excerpt.csv"


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    load_policy.cache_clear()
    yield
    load_policy.cache_clear()


def _zip(path: Path, members: dict[str, Path | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path


def _cut(path: Path, after: bytes) -> bytes:
    """The file cut short just after ``after``, as an interrupted download leaves it."""
    raw = path.read_bytes()
    return raw[: raw.index(after) + len(after)]


# -- the MUE file ----------------------------------------------------------------------------


def test_mue_csv_keeps_therapy_codes_and_the_date_in_its_name(tmp_path):
    result = import_mue_file(MUE, tmp_path)
    assert (result.read, result.kept, result.effective) == (5, 4, date(2026, 7, 1))
    policy = load_policy(str(tmp_path))
    assert policy.unit_caps(date(2026, 7, 1))["97110"] == 7
    assert policy.unit_caps(date(2026, 7, 1))["97112"] == 5
    # Before its date the shipped starter table is in force (97112: 4; no MUE for 97110).
    assert policy.unit_caps(date(2026, 6, 30))["97112"] == 4
    assert "97110" not in policy.unit_caps(date(2026, 6, 30))


def test_mue_zip_as_cms_ships_it(tmp_path):
    archive = _zip(
        tmp_path / "practitioner-services-mue-table-effective-07-01-2026.zip",
        {
            "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv": MUE,
            "MCR_MUE_PractitionerServices_Eff_07-01-2026.xlsx": b"PK not read",
            "Readme.txt.pdf": b"%PDF",
        },
    )
    result = import_mue_file(archive, tmp_path / "policy")
    assert (result.read, result.kept, result.effective) == (5, 4, date(2026, 7, 1))


def test_mue_without_a_date_in_its_name_needs_one(tmp_path):
    plain = tmp_path / "mue.csv"
    plain.write_bytes(MUE.read_bytes())
    with pytest.raises(InputError, match="give --effective"):
        import_mue_file(plain, tmp_path / "policy")
    assert not (tmp_path / "policy").exists()
    result = import_mue_file(plain, tmp_path / "policy", effective=date(2026, 4, 1))
    assert result.effective == date(2026, 4, 1)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", "empty"),
        (b"just some words\n", "MCR_MUE_PractitionerServices_Eff_07-01-2026.zip", "not a zip"),
        (RVU_CSV.read_bytes(), "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", "no 'HCPCS"),
        (
            _cut(MUE, b"G0283,1,3 Date"),
            "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv",
            "line 14",
        ),
        (_cut(MUE, b"G0283,1,"), "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", "truncated"),
        (b"x", "MCR_MUE_PractitionerServices_Eff_07-01-2026.xlsx", "use the CSV"),
    ],
    ids=["empty", "not-a-zip", "wrong-layout", "truncated-row", "truncated-mai", "xlsx"],
)
def test_mue_refusals_leave_the_earlier_import_alone(tmp_path, content, name, message):
    import_mue_file(MUE, tmp_path / "policy")
    before = sorted(p.name for p in (tmp_path / "policy").iterdir())
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(InputError, match=message) as refused:
        import_mue_file(bad, tmp_path / "policy")
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == before


def test_mue_of_another_setting_is_refused(tmp_path):
    other = tmp_path / "MCR_MUE_OutpatientHospitalServices_Eff_07-01-2026.csv"
    other.write_text(
        "HCPCS/CPT Code,Outpatient Hospital Services MUE Values,MUE Adjudication Indicator,"
        "MUE Rationale\n97110,6,3 Date of Service Edit: Clinical,Clinical: Data\n"
    )
    with pytest.raises(InputError, match="not the practitioner MUE table"):
        import_mue_file(other, tmp_path / "policy")


# -- the RVU and GPCI files ------------------------------------------------------------------


@pytest.mark.parametrize("source", [RVU_CSV, RVU_TXT], ids=["csv", "fixed-width txt"])
def test_rvu_file_plain(tmp_path, source):
    result = import_mpfs_file(source, tmp_path)
    assert (result.effective, result.read, result.kept) == (
        date(2025, 10, 1),
        9 if source is RVU_CSV else 8,  # the csv excerpt also has a modifier 26 row
        8,
    )
    schedule = load_policy(str(tmp_path)).mpfs.schedule_for(date(2025, 11, 3))
    assert schedule.conversion_factor == 32.3465
    assert schedule.rvus["97110"] == (0.45, 0.43, 0.01)
    assert schedule.status["97010"] == "B" and schedule.status["97014"] == "I"
    assert "97110" in schedule.mppr and "97010" not in schedule.mppr


def test_rvu_zip_with_its_gpci_file_and_a_locality(tmp_path):
    archive = _zip(
        tmp_path / "RVU25D.zip",
        {
            "PPRRVU2025_Oct.csv": RVU_CSV,
            "PPRRVU2025_Oct.txt": RVU_TXT,
            "GPCI2025.csv": GPCI,
            "RVU25D.pdf": b"%PDF",
        },
    )
    result = import_mpfs_file(archive, tmp_path / "p", locality="01112-05")
    assert (result.gpci_year, result.localities) == (2025, 3)
    mpfs = load_policy(str(tmp_path / "p")).mpfs
    assert mpfs.locality == "01112-05"
    # San Francisco, 97110, 2025 October: (0.45 x 1.088 + 0.43 x 1.419 + 0.01 x 0.445) x 32.3465
    assert mpfs.unit_amount("97110", date(2025, 11, 3)) == (
        35.72,
        "MPFS 2025 locality 01112-05 (GPCI 2025)",
    )


def test_gpci_file_given_apart(tmp_path):
    result = import_mpfs_file(RVU_CSV, tmp_path, gpci=GPCI, locality="10112-00")
    assert result.localities == 3
    with pytest.raises(InputError, match="locality '99999-00' is not in the GPCI file"):
        import_mpfs_file(RVU_CSV, tmp_path / "other", gpci=GPCI, locality="99999-00")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "PPRRVU2025_Oct.csv", "empty"),
        (b"not a zip at all", "RVU25D.zip", "not a zip"),
        (MUE.read_bytes(), "PPRRVU2025_Oct.csv", "no 'HCPCS, MOD, DESCRIPTION' header"),
        (RVU_CSV.read_bytes()[:-60], "PPRRVU2025_Oct.csv", "stops short"),
        (RVU_TXT.read_bytes()[:-40], "PPRRVU2025_Oct.txt", "stops short"),
    ],
    ids=["empty", "not-a-zip", "wrong-layout", "truncated-csv", "truncated-txt"],
)
def test_rvu_refusals_leave_the_earlier_import_alone(tmp_path, content, name, message):
    import_mpfs_file(RVU_CSV, tmp_path / "policy")
    before = {p.name: p.read_bytes() for p in (tmp_path / "policy").iterdir()}
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(InputError, match=message) as refused:
        import_mpfs_file(bad, tmp_path / "policy")
    assert "\n" not in str(refused.value)
    assert {p.name: p.read_bytes() for p in (tmp_path / "policy").iterdir()} == before


def test_truncated_zip_is_refused(tmp_path):
    whole = _zip(tmp_path / "RVU25D.zip", {"PPRRVU2025_Oct.csv": RVU_CSV})
    cut = tmp_path / "cut" / "RVU25D.zip"
    cut.parent.mkdir()
    cut.write_bytes(whole.read_bytes()[:-30])
    with pytest.raises(InputError, match="damaged or truncated"):
        import_mpfs_file(cut, tmp_path / "policy")


def test_truncated_ptp_file_is_refused(tmp_path):
    text = (
        "CPT only copyright 2025 American Medical Association.\t\t\t\t\t\t\n"
        "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\t"
        "Modifier\tPTP Edit Rationale\n"
        "97530\t97112\t\t20260101\t*\t1\tMutually exclusive procedures\n"
        "97530\t97116\t\t2026"
    )
    cut = tmp_path / "ccipra-v321r0-f1.txt"
    cut.write_text(text)
    with pytest.raises(InputError, match="incomplete edit row"):
        import_ptp_file(cut, tmp_path / "policy")
    assert not (tmp_path / "policy" / "ptp_ncci.csv").exists()


# -- which version is in force ---------------------------------------------------------------


def test_policy_show_names_the_version_in_force_and_its_origin(tmp_path):
    import_mue_file(MUE, tmp_path)
    policy = load_policy(str(tmp_path))
    before, after = in_force(policy, date(2026, 6, 30)), in_force(policy, date(2026, 7, 1))
    assert [v.origin for v in before["mue"]] == ["shipped excerpt"]
    assert [(v.origin, v.source) for v in after["mue"]] == [
        ("imported", "MCR_MUE_PractitionerServices_Eff_07-01-2026.excerpt.csv")
    ]
    assert in_force(policy, date(2025, 9, 30))["mpfs"] == []  # before RVU25D's October release
    [rvu] = in_force(policy, date(2026, 3, 4))["mpfs"]
    assert rvu.origin == "shipped excerpt" and "RVU25D" in rvu.source
    text = "\n".join(describe(policy, date(2026, 7, 1)))
    assert "practitioner MUEs: imported, from 2026-07-01: MCR_MUE_PractitionerServices" in text


def _ptp(tmp_path: Path, deletion: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "ccipra-v321r0-f1.txt"
    source.write_text(
        "CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t\n"
        "Column1/Column2 Edits\t\t\t\t\t\t\n"
        "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\n"
        "\t\tprior to 1996\tDate\tDate\t0=not allowed\t\n"
        "\t\t\t\t*=no data\t1=allowed\t\n"
        "\t\t\t\t\t9=not applicable\t\n"
        f"97530\t97112\t\t20250101\t{deletion}\t1\tMisuse of column two code\n"
    )
    import_ptp_file(source, tmp_path / "policy")
    return tmp_path / "policy"


def _fired(bundle: dict, folder: Path, monkeypatch) -> set[str]:
    monkeypatch.setenv("UNITGUARD_POLICY_DIR", str(folder))
    load_policy.cache_clear()
    return {f.rule for f in review_bundle(bundle).findings}


def _pair_visit() -> dict:
    b = VisitBuilder(day="2026-03-04")
    b.proc("97530", "09:00", "09:20", note="Functional transfers", goals=("goal-9",))
    b.proc("97112", "09:20", "09:40")
    b.line("97530", 1)
    b.line("97112", 1)
    return b.bundle()


def test_a_pair_deleted_last_quarter_does_not_fire(tmp_path, monkeypatch):
    deleted = _ptp(tmp_path / "old", "20260101")
    assert "missing-distinct-modifier" not in _fired(_pair_visit(), deleted, monkeypatch)
    current = _ptp(tmp_path / "new", "*")
    assert "missing-distinct-modifier" in _fired(_pair_visit(), current, monkeypatch)


def test_an_mue_applies_from_its_quarter(tmp_path, monkeypatch):
    import_mue_file(MUE, tmp_path / "policy")  # 97110: 7 units from 2026-07-01

    def visit(day: str) -> dict:
        b = VisitBuilder(day=day, length=140)
        b.proc("97110", "09:00", "11:00")
        b.line("97110", 8)
        return b.bundle()

    assert "daily-unit-cap" not in _fired(visit("2026-06-30"), tmp_path / "policy", monkeypatch)
    assert "daily-unit-cap" in _fired(visit("2026-07-01"), tmp_path / "policy", monkeypatch)
