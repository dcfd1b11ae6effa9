"""Hostile input to the review: always a clear error or a correct review, never a crash or hang."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.cli import main
from plugin.errors import InputError
from plugin.review import review_bundle
from plugin.rules.overlap import MAX_PAIRS
from plugin.synthetic.visit import VisitBuilder, clean_visit

BASE = clean_visit().bundle()
PATHS = [  # (resourceType, field) pairs the reader looks at
    ("Encounter", "period"),
    ("Encounter", "length"),
    ("Encounter", "subject"),
    ("Procedure", "performedPeriod"),
    ("Procedure", "code"),
    ("Procedure", "performer"),
    ("Procedure", "note"),
    ("Procedure", "extension"),
    ("Procedure", "encounter"),
    ("Procedure", "status"),
    ("Claim", "item"),
    ("Claim", "insurance"),
    ("Claim", "patient"),
    ("Observation", "valueQuantity"),
    ("Observation", "effectiveDateTime"),
    ("Goal", "target"),
    ("DocumentReference", "content"),
    ("DocumentReference", "context"),
    ("Coverage", "payor"),
    ("Coverage", "type"),
    ("Practitioner", "qualification"),
]
weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=5),
            st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        ),
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "start",
                "end",
                "value",
                "reference",
                "coding",
                "code",
                "system",
                "data",
                "text",
                "url",
            ]
        ),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=25), st.lists(st.integers(), max_size=2)
        ),
        max_size=4,
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), weird), min_size=1, max_size=6))
def test_wrong_types_anywhere_give_a_review_or_a_clear_error(mutations):
    bundle = copy.deepcopy(BASE)
    for (rtype, field), value in mutations:
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == rtype:
                entry["resource"][field] = value
    try:
        report = review_bundle(bundle)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert report.verdict in ("supported", "needs-review", "unsupported")
    for service in report.services:
        assert service.supported_units >= 0


def test_reversed_and_huge_periods():
    b = VisitBuilder()
    b.proc("97112", "09:30", "09:00")  # reversed
    proc = b.proc("97110", "09:00", "09:20")
    proc["performedPeriod"] = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}
    b.line("97112", 2)
    b.line("97110", 2)
    report = review_bundle(b.bundle())
    assert {f.rule for f in report.findings} >= {"missing-minutes"}  # reversed one not counted
    assert any("ends before it starts" in n for n in report.visit.notes)


def test_ten_thousand_procedures_review_quickly_and_correctly():
    b = VisitBuilder(length=None)
    for i in range(10_000):
        minute = i % 50
        b.proc("97112", f"09:{minute:02d}", f"09:{minute + 1:02d}", note="")
    b.line("97112", 4)
    report = review_bundle(b.bundle())
    row = next(s for s in report.services if s.code == "97112")
    assert row.minutes == 50  # each of the 50 distinct minutes counted once (contract §2)
    overlaps = [f for f in report.findings if f.rule == "minutes-overlap"]
    assert len(overlaps) == MAX_PAIRS + 1  # the cap, then one summary finding
    assert overlaps[-1].message.startswith(f"more than {MAX_PAIRS} overlapping pairs")


def test_deep_nesting_is_a_clear_error(tmp_path):
    depth = 100_000
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth)
    result = CliRunner().invoke(main, ["review", str(path)])
    assert result.exit_code == 2
    assert "deep.json" in result.stderr and "Traceback" not in result.stderr


def test_deeply_nested_values_inside_a_bundle_are_tolerated():
    bundle = copy.deepcopy(BASE)
    nested: object = "x"
    for _ in range(200):
        nested = {"extension": [{"valueString": nested}]}
    bundle["entry"][0]["resource"]["extension"] = [nested]
    assert review_bundle(bundle).verdict == "supported"


def test_bad_base64_and_non_utf8_note():
    bundle = copy.deepcopy(BASE)
    docs = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]
    docs[0]["content"] = [
        {"attachment": {"contentType": "text/plain", "data": "!!!not base64!!!"}},
        {
            "attachment": {
                "contentType": "text/plain",
                "data": base64.b64encode(b"\xff\xfe caf\xe9 balance").decode(),
            }
        },
    ]
    report = review_bundle(bundle)
    assert any("not valid base64" in n for n in report.visit.notes)
    assert "balance" in report.visit.note_text


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe\xfa", b"\x00\x01{", '{"a": "\ud800"}'.encode("utf-8", "surrogatepass")]
)
def test_non_utf8_files_are_clear_errors(tmp_path, raw):
    path = tmp_path / "bad.json"
    path.write_bytes(raw)
    result = CliRunner().invoke(main, ["review", str(path)])
    assert result.exit_code == 2 and "bad.json" in result.stderr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_command(data):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.json"
        path.write_bytes(data)
        result = CliRunner().invoke(main, ["review", str(path), "--format", "json"])
    assert result.exit_code in (0, 1, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code != 2:
        json.loads(result.stdout)
