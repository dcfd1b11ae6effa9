"""The unitguard command: exit codes, the JSON object, clear messages for bad input."""

from __future__ import annotations

import json

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.cli import main
from plugin.synthetic.visit import VisitBuilder, clean_visit


@pytest.fixture
def runner():
    return CliRunner()


def write(tmp_path, data, name="bundle.json"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else orjson.dumps(data))
    return str(path)


def test_clean_visit_json(runner, tmp_path):
    result = runner.invoke(
        main, ["review", write(tmp_path, clean_visit().bundle()), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["encounter"] == "Encounter/enc-1"
    assert out["patient"] == "Patient/pat-1"
    assert out["date"] == "2026-03-04"
    assert out["method"] == "cms"
    assert (out["total_timed_minutes"], out["total_timed_units"]) == (47, 3)
    assert out["verdict"] == "supported"
    assert out["findings"] == []
    row = next(s for s in out["services"] if s["code"] == "97112")
    assert row == {
        "code": "97112",
        "minutes": 24,
        "billed_units": 2,
        "supported_units": 2,
        "modifiers": ["GP"],
        "timed": True,
        "suggested_units": 2,
        "billed_amount": row["billed_amount"],  # the line's charge (a float, or None unpriced)
    }
    assert out["prices"] == "charges" and out["billed_total"] > 0
    assert out["billed_total"] > 0 and out["dollars_at_risk"] == 0
    assert "day" not in out  # no other visit on the date


def test_error_finding_exits_1_with_the_contract_fields(runner, tmp_path):
    b = VisitBuilder()
    b.proc("97112", "09:00", "09:24")
    b.line("97112", 3)
    result = runner.invoke(main, ["review", write(tmp_path, b.bundle()), "--format", "json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["verdict"] == "unsupported"
    finding = next(f for f in out["findings"] if f["rule"] == "units-exceed-time")
    assert finding["severity"] == "error" and finding["code"] == "97112"
    assert finding["message"].startswith("3 units of 97112 billed; 24 documented minutes support 2")
    assert finding["fix"] and finding["citation"]


def test_warning_only_is_needs_review_and_exit_0(runner, tmp_path):
    b = clean_visit(measure=False)  # no objective measure today: a warning (BPM §220.3 D)
    result = runner.invoke(main, ["review", write(tmp_path, b.bundle()), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["verdict"] == "needs-review"


def test_method_option_overrides_the_payer(runner, tmp_path):
    b = VisitBuilder()
    b.proc("97110", "09:00", "09:33", note="Strength")
    b.proc("97140", "09:33", "09:40", goals=(), note="Manual therapy")
    b.line("97110", 2)
    b.line("97140", 1)
    path = write(tmp_path, b.bundle())
    assert runner.invoke(main, ["review", path]).exit_code == 0
    result = runner.invoke(main, ["review", path, "--method", "ama", "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["method"] == "ama"


def test_encounter_option_picks_the_visit(runner, tmp_path):
    b = clean_visit()
    b.earlier_visit("enc-0", "2026-02-25")
    path = write(tmp_path, b.bundle())
    result = runner.invoke(main, ["review", path, "--encounter", "enc-0", "--format", "json"])
    assert json.loads(result.stdout)["encounter"] == "Encounter/enc-0"
    latest = runner.invoke(main, ["review", path, "--format", "json"])
    assert json.loads(latest.stdout)["encounter"] == "Encounter/enc-1"


def test_text_format_lists_findings_and_a_summary(runner, tmp_path):
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 1)
    result = runner.invoke(main, ["review", write(tmp_path, b.bundle())])
    assert result.exit_code == 1
    assert "ERROR   doc-unsigned" in result.output
    assert result.output.strip().splitlines()[-1].startswith("unsupported: 1 error(s)")
    assert "\x1b[" not in result.output  # no colour when not on a terminal


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a FHIR Bundle object"),
        (orjson.dumps({"resourceType": "Patient", "id": "x"}), "expected resourceType 'Bundle'"),
        (orjson.dumps({"resourceType": "Bundle", "entry": {}}), "Bundle.entry is not a list"),
        (orjson.dumps({"resourceType": "Bundle", "entry": []}), "no Encounter"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_bad_input_exits_2_with_one_line(runner, tmp_path, content, expected):
    result = runner.invoke(main, ["review", write(tmp_path, content)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "bundle.json" in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_encounter_exits_2(runner, tmp_path):
    result = runner.invoke(
        main, ["review", write(tmp_path, clean_visit().bundle()), "--encounter", "nope"]
    )
    assert result.exit_code == 2
    assert "no Encounter with id 'nope'" in result.stderr


def test_missing_file_exits_2(runner, tmp_path):
    result = runner.invoke(main, ["review", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert "absent.json" in result.stderr


def test_dangling_references_are_notes_not_crashes(runner, tmp_path):
    b = clean_visit()
    bundle = b.bundle()
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Procedure":
            entry["resource"]["performer"] = [{"actor": {"reference": "Practitioner/ghost"}}]
    result = runner.invoke(main, ["review", write(tmp_path, bundle), "--format", "json"])
    out = json.loads(result.stdout)
    assert any("Practitioner/ghost" in n for n in out["notes"])


def test_strict_mode_reports_an_invalid_resource(runner, tmp_path):
    bundle = clean_visit().bundle()
    bundle["entry"][1]["resource"]["status"] = 42
    result = runner.invoke(main, ["review", write(tmp_path, bundle), "--strict"])
    assert result.exit_code == 2
    assert "Encounter/enc-1" in result.stderr and "not valid FHIR R4" in result.stderr


def test_strict_mode_accepts_a_valid_bundle(runner, tmp_path):
    result = runner.invoke(main, ["review", write(tmp_path, clean_visit().bundle()), "--strict"])
    assert result.exit_code == 0, result.stderr


def test_help_for_every_command(runner):
    for args in (
        ["--help"],
        ["review", "--help"],
        ["policy", "--help"],
        ["policy", "import-ncci", "--help"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0 and "Usage" in result.output


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
bundle_like = st.fixed_dictionaries(
    {
        "resourceType": st.just("Bundle"),
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "resource": st.dictionaries(
                        st.sampled_from(
                            [
                                "resourceType",
                                "id",
                                "status",
                                "period",
                                "subject",
                                "code",
                                "performedPeriod",
                                "encounter",
                                "item",
                                "quantity",
                                "length",
                                "extension",
                                "note",
                                "content",
                                "context",
                            ]
                        ),
                        json_values
                        | st.sampled_from(
                            [
                                "Encounter",
                                "Procedure",
                                "Claim",
                                "ChargeItem",
                                "Observation",
                                "DocumentReference",
                                "Goal",
                            ]
                        ),
                    )
                }
            ),
            max_size=6,
        ),
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(json_values, bundle_like))
def test_arbitrary_json_never_crashes(tmp_path, data):
    result = CliRunner().invoke(
        main, ["review", write(tmp_path, json.dumps(data).encode()), "--format", "json"]
    )
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code == 2:
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    else:
        json.loads(result.stdout)
