"""Hostile audit input: every visit is reviewed or listed in errors.csv, never a crash, a hang,
a visit reviewed twice or one lost without a word."""

from __future__ import annotations

import base64
import csv
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.batch.audit import run_audit
from plugin.batch.synth import generate
from tests.test_hostile_input import PATHS, weird


@pytest.fixture(scope="module")
def clean_lines(tmp_path_factory) -> dict[str, list[dict]]:
    data = tmp_path_factory.mktemp("clean")
    generate(data, visits=4, defect_rate=0.0, seed=5)
    return {
        path.name: [orjson.loads(line) for line in path.read_bytes().splitlines()]
        for path in sorted(data.glob("*.ndjson"))
    }


def write(folder, files: dict[str, list]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        with (folder / name).open("wb") as fh:
            for line in lines:
                fh.write((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n")


def audit(folder, out):
    result = run_audit(folder, out, scheduler="sync", buckets=2, progress=False)
    with (out / "visits.csv").open() as fh:
        visits = [r["encounter"] for r in csv.DictReader(fh)]
    with (out / "errors.csv").open() as fh:
        errors = list(csv.DictReader(fh))
    return result, visits, errors


def encounters_in(files: dict[str, list]) -> set[str]:
    """The Encounters a reader can parse (a NaN or a bad number makes the line unreadable, and
    the line is then listed by file and line number instead)."""
    found = set()
    for lines in files.values():
        for r in lines:
            try:
                parsed = orjson.loads(json.dumps(r))
            except orjson.JSONDecodeError:
                continue
            if parsed.get("resourceType") == "Encounter" and isinstance(parsed.get("id"), str):
                found.add(f"Encounter/{parsed['id']}")
    return found


mutation = st.tuples(st.sampled_from(PATHS), st.integers(min_value=0, max_value=50), weird)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_wrong_types_anywhere_never_crash_or_lose_a_visit(clean_lines, tmp_path_factory, mutations):
    files = {name: [dict(r) for r in lines] for name, lines in clean_lines.items()}
    for (rtype, field), pick, value in mutations:
        candidates = files.get(f"{rtype}.ndjson") or []
        if candidates:
            candidates[pick % len(candidates)][field] = value
    folder = tmp_path_factory.mktemp("fuzz")
    write(folder / "in", files)
    _, visits, errors = audit(folder / "in", folder / "out")
    assert not [e for e in errors if "internal error" in e["problem"]], errors
    reviewed_or_reported = set(visits) | {e["file"] for e in errors}
    assert encounters_in(files) <= reviewed_or_reported
    assert len(visits) == len(set(visits))  # nobody reviewed twice


def test_broken_lines_are_listed_with_file_and_line_and_the_rest_is_reviewed(clean_lines, tmp_path):
    files = {name: list(lines) for name, lines in clean_lines.items()}
    hostile = [
        b"\xff\xfe not utf-8 \x80",
        b"[" * 100_000,  # nesting far beyond any parser's limit
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"resourceType": 42}',
        b"{" + b'"a":' * 10 + b"}",
        b"",  # blank lines are skipped silently
        b"   ",
    ]
    files["Procedure.ndjson"] = (
        files["Procedure.ndjson"][:2] + hostile + files["Procedure.ndjson"][2:]
    )
    write(tmp_path / "in", files)
    result, visits, errors = audit(tmp_path / "in", tmp_path / "out")
    assert result.visits == 4 and len(visits) == 4
    assert [(e["file"], e["line"]) for e in errors] == [
        ("Procedure.ndjson", str(n)) for n in (3, 4, 5, 6, 7, 8)
    ]
    assert all(e["problem"] for e in errors)


def test_an_encounter_without_a_patient_is_reviewed_once(clean_lines, tmp_path):
    files = {name: list(lines) for name, lines in clean_lines.items()}
    orphan = {"resourceType": "Encounter", "id": "orphan-1", "status": "finished"}
    files["Encounter.ndjson"] = files["Encounter.ndjson"] + [orphan, orphan]  # and a duplicate
    write(tmp_path / "in", files)
    _, visits, errors = audit(tmp_path / "in", tmp_path / "out")
    assert visits.count("Encounter/orphan-1") == 1
    assert len(visits) == 5 and not errors


def test_ten_thousand_procedures_and_a_huge_note_finish(clean_lines, tmp_path):
    files = {name: list(lines) for name, lines in clean_lines.items()}
    first = files["Procedure.ndjson"][0]
    many = []
    for n in range(10_000):
        proc = dict(first, id=f"many-{n}")
        minute = n % 50
        proc["performedPeriod"] = {
            "start": f"2026-03-04T09:{minute:02d}:00-05:00",
            "end": f"2026-03-04T09:{minute + 5:02d}:00-05:00",
        }
        many.append(proc)
    files["Procedure.ndjson"] += many
    huge = base64.b64encode(("word " * 400_000).encode()).decode()
    files["DocumentReference.ndjson"][0] = dict(
        files["DocumentReference.ndjson"][0],
        content=[{"attachment": {"contentType": "text/plain", "data": huge}}],
    )
    files["DocumentReference.ndjson"][1]["content"] = [{"attachment": {"data": "!!not base64!!"}}]
    write(tmp_path / "in", files)
    result, visits, errors = audit(tmp_path / "in", tmp_path / "out")
    assert result.visits == 4 and not [e for e in errors if "internal error" in e["problem"]]


def test_empty_and_blank_files(tmp_path):
    write(tmp_path / "in", {"Patient.ndjson": [], "Encounter.ndjson": [b"", b"  "]})
    result, visits, errors = audit(tmp_path / "in", tmp_path / "out")
    assert result.visits == 0 and visits == [] and errors == []
    assert "<b>0</b><span>therapy visits reviewed" in (tmp_path / "out" / "report.html").read_text()


def test_a_visit_that_fails_to_build_or_review_is_listed_and_the_others_still_reviewed(
    tmp_path, clean_lines, monkeypatch
):
    """The audit builds a patient's visits first and then reviews them (plugin.batch.passes
    ._reviewed); a failure in either step still costs only that visit, named in errors.csv."""
    from plugin.batch import passes

    write(tmp_path / "in", clean_lines)
    everyone = sorted(encounters_in(clean_lines))
    broken_build, broken_review = everyone[0], everyone[1]
    real_build, real_review = passes.build_visit, passes.review

    def build(index, policy, encounter_id=None, **kwargs):
        if f"Encounter/{encounter_id}" == broken_build:
            raise RuntimeError("simulated reader bug")
        return real_build(index, policy, encounter_id=encounter_id, **kwargs)

    def review(visit, policy):
        if visit.encounter == broken_review:
            raise KeyError("simulated rule bug")
        return real_review(visit, policy)

    monkeypatch.setattr(passes, "build_visit", build)
    monkeypatch.setattr(passes, "review", review)
    _, visits, errors = audit(tmp_path / "in", tmp_path / "out")
    problems = {e["file"]: e["problem"] for e in errors}
    assert problems == {
        broken_build: "could not be reviewed (internal error RuntimeError)",
        broken_review: "could not be reviewed (internal error KeyError)",
    }
    assert set(visits) == set(everyone) - {broken_build, broken_review}
