"""The audit finds exactly the injected defects, agrees with `review`, and survives bad lines."""

from __future__ import annotations

import csv
import json
import re

import pytest
from click.testing import CliRunner

from plugin.batch.audit import run_audit
from plugin.batch.synth import DEFECTS, encounters_written, generate
from plugin.cli import main
from plugin.review import review_bundle
from plugin.rules.batch import BATCH_RULES

BATCH_IDS = {r.id for r in BATCH_RULES}  # rules that need other patients; review cannot see them


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    data = tmp_path_factory.mktemp("ndjson")
    injected = generate(data, visits=60, defect_rate=0.5, seed=7)
    with (data / "Procedure.ndjson").open("ab") as fh:
        fh.write(b'{"resourceType": "Procedure", "id": \n')  # a malformed line, appended last
    out = tmp_path_factory.mktemp("out")
    result = run_audit(data, out, buckets=4, progress=False)
    return data, out, result, injected


def rows(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_audit_finds_exactly_the_injected_defects(audited):
    data, out, result, injected = audited
    assert result.visits == encounters_written(60, injected) and sum(injected.values()) > 0
    truth = {(r["encounter"], r["rule"]) for r in rows(data / "truth.csv")}
    found = {
        (r["encounter"], r["rule"]) for r in rows(out / "findings.csv") if r["rule"] in DEFECTS
    }
    assert found == truth  # recall and precision 100% for every injected rule


def test_malformed_line_is_reported_with_file_and_line(audited):
    data, out, result, _ = audited
    errors = rows(out / "errors.csv")
    lines = len((data / "Procedure.ndjson").read_text().splitlines())
    assert errors == [
        {"file": "Procedure.ndjson", "line": str(lines), "problem": errors[0]["problem"]}
    ]
    assert errors[0]["problem"].startswith("not JSON")


def test_audit_and_review_agree(audited, tmp_path):
    data, out, _, _ = audited
    by_type = {
        p.stem: [
            json.loads(line) for line in p.read_text().splitlines() if line.strip().endswith("}")
        ]
        for p in data.glob("*.ndjson")
    }
    resources = [r for rs in by_type.values() for r in rs]
    for n in (0, 1, 2, 3):
        prefix = f"v{n}-"
        mine = [
            r
            for r in resources
            if r["id"].startswith(prefix) or r["resourceType"] == "Practitioner"
        ]
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in mine],
        }
        report = review_bundle(bundle, encounter_id=f"v{n}-enc-1")
        expected = sorted((f.rule, f.code or "") for f in report.findings)
        audited_rows = sorted(
            (r["rule"], r["code"])
            for r in rows(out / "findings.csv")
            if r["encounter"] == f"Encounter/v{n}-enc-1" and r["rule"] not in BATCH_IDS
        )
        assert audited_rows == expected


def test_outputs_exist_and_report_reads_offline(audited):
    _, out, result, injected = audited
    import pyarrow.parquet as pq

    assert pq.read_table(out / "findings.parquet").num_rows == result.findings
    visits = pq.read_table(out / "visits.parquet").to_pylist()
    assert len(visits) == result.visits == len(rows(out / "visits.csv"))
    assert all(isinstance(v["findings"], int) and v["encounter"] for v in visits)
    report = (out / "report.html").read_text()
    assert "<svg" in report and "Dollars at risk by month" in report
    from collections import Counter

    per_rule = Counter(r["rule"] for r in rows(out / "findings.csv"))
    for rule_id, count in per_rule.items():  # the rule table agrees with findings.csv
        assert f"<code>{rule_id}</code>" in report
        assert re.search(rf"<code>{rule_id}</code>.*?<td>{count:,}</td>", report)
    assert 'src="http' not in report and 'href="http' not in report  # nothing fetched
    # the episode section: each injected episode defect counted where an auditor looks first
    section = report.split("<h2>Plan of care and progress reports</h2>")[1].split("<h2>")[0]
    for rule_id in ("poc-not-certified", "progress-report-overdue"):
        assert injected[rule_id] > 0
        assert re.search(rf"<code>{rule_id}</code>.*?<td>{per_rule[rule_id]:,}</td>", section)


def test_cli_synth_and_audit(tmp_path):
    runner = CliRunner()
    made = runner.invoke(
        main,
        [
            "synth",
            "--visits",
            "10",
            "--defect-rate",
            "0.3",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert made.exit_code == 0, made.output
    done = runner.invoke(
        main, ["audit", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--partitions", "2"]
    )
    assert done.exit_code == 0, done.output
    assert done.output.startswith("10 therapy visits reviewed, 0 other encounters skipped,")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = runner.invoke(main, ["audit", str(empty), "--out", str(tmp_path / "o2")])
    assert refused.exit_code == 2 and "no *.ndjson files" in refused.stderr
