"""A patient's year through the audit: the rules that read other encounters (KX running total,
per-day cap across two encounters of one date, notes cloned from earlier visits) fire where the
year says they should, computed here independently of the rules.

The KX running total counts the beneficiary's "incurred expenses" (SSA §1833(g); Noridian's KX
modifier page): allowed amounts, the payer's where a remittance (ClaimResponse) is in the data,
else units x the fee schedule amount (mpfs.toml, read here straight from the TOML), never the
clinic's charges.
"""

from __future__ import annotations

import csv
import json
import tomllib
from datetime import date, timedelta
from pathlib import Path

import orjson

from plugin.batch.audit import run_audit
from plugin.policy import load_policy
from plugin.synthetic.ids import unique_ids
from plugin.synthetic.visit import VisitBuilder, clean_visit

PATIENT = "year-pat"


def _as_one_patient(builder: VisitBuilder, prefix: str) -> list[dict]:
    text = json.dumps(unique_ids(builder.bundle(), prefix)).replace(f"{prefix}-pat-1", PATIENT)
    return [e["resource"] for e in json.loads(text)["entry"]]


def write_year(folder, visits: list[list[dict]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, dict[str, dict]] = {}
    for resources in visits:
        for r in resources:
            by_type.setdefault(r["resourceType"], {})[r["id"]] = r  # one Patient, one per id
    for rtype, resources in by_type.items():
        (folder / f"{rtype}.ndjson").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in resources.values())
        )


def findings(out) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with (out / "findings.csv").open() as fh:
        for row in csv.DictReader(fh):
            found.setdefault(row["encounter"], set()).add(row["rule"])
    return found


MPFS = Path(__file__).resolve().parents[2] / "plugin" / "policy" / "data" / "mpfs.toml"
REMITTED = 10  # the first ten visits have the payer's remittance: 97112 x 2 $74.00, 97110 $31.50


def fee_2026(code: str) -> float:
    schedules = tomllib.loads(MPFS.read_text())["schedule"]
    return next(s for s in schedules if s["year"] == 2026)["amounts"][code]


def cut_2026(code: str) -> float:
    """A unit after the day's first: half its practice expense (therapy MPPR, ch.5 §10.7)."""
    schedules = tomllib.loads(MPFS.read_text())["schedule"]
    work, pe, mp = next(s for s in schedules if s["year"] == 2026)["rvus"][code]
    return round((work + pe / 2 + mp) * 33.4009, 2)


def test_a_year_of_visits_of_one_patient(tmp_path):
    threshold = load_policy().kx_years[2026].pt_slp
    first = date(2026, 1, 6)
    days = [first + timedelta(weeks=n) for n in range(28)]
    builders = [clean_visit(day=d.isoformat()) for d in days]
    for builder in builders[:REMITTED]:
        builder.allowed[id(builder.claim_items[0])] = 74.0
        builder.allowed[id(builder.claim_items[1])] = 31.5
    visits = [_as_one_patient(b, f"w{n:02d}") for n, b in enumerate(builders)]
    # A second encounter on the day of the fifth visit, billing 97112 again: 2 + 3 > 4 units.
    extra = VisitBuilder(day=days[4].isoformat())
    extra.proc("97112", "14:00", "14:40", note="Different words: gait drills on stairs with cues.")
    extra.line("97112", 3)
    visits.append(_as_one_patient(extra, "extra"))
    write_year(tmp_path / "in", visits)
    result = run_audit(tmp_path / "in", tmp_path / "out", scheduler="sync", progress=False)
    assert result.visits == 29
    found = findings(tmp_path / "out")

    spent = charged = 0.0
    crossed = by_charge = None
    for n in range(len(days)):
        encounter = f"Encounter/w{n:02d}-enc-1"
        rules = found.get(encounter, set())
        if n < REMITTED:
            this_visit = 74.0 + 31.5
        else:  # 97112 has the higher practice expense: its first unit in full, the rest cut
            this_visit = fee_2026("97112") + cut_2026("97112") + cut_2026("97110")
        if n == 4:  # the same day's second encounter (no remittance): 97112 x 3
            this_visit += fee_2026("97112") + 2 * cut_2026("97112")
        spent += this_visit
        charged += 2 * 35.0 + 35.0 + (3 * 35.0 if n == 4 else 0.0)
        assert ("missing-kx" in rules) == (spent > threshold), (n, spent, rules)
        assert ("cloned-note" in rules) == (n > 0), (n, rules)  # the same note every week
        assert ("daily-unit-cap" in rules) == (n == 4), (n, rules)
        if crossed is None and spent > threshold:
            crossed = n
        if by_charge is None and charged > threshold:
            by_charge = n
    assert "daily-unit-cap" in found["Encounter/extra-enc-1"]
    # At the clinic's charges the threshold would have been passed earlier, and every visit from
    # there flagged; at allowed amounts it is passed later in the year, and it is passed.
    assert by_charge is not None and crossed is not None and crossed > by_charge, (
        by_charge,
        crossed,
    )
