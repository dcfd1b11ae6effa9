"""Note text kept in Binary (a Bulk export's Binary.ndjson, lines that name no patient) reaches
the review of the visit whose DocumentReference points at it: the audit finds the same as with
the text embedded in the DocumentReference."""

from __future__ import annotations

import base64
import csv

import orjson
import pytest

from plugin.batch.audit import run_audit
from plugin.batch.synth import encounters_written, generate


def rows(path):
    with path.open() as fh:
        return sorted(tuple(r.values()) for r in csv.DictReader(fh))


def to_binaries(embedded, folder) -> int:
    """The same export with every note's text moved into a Binary, referred to in the ways
    Epic and Oracle Health do (relative and absolute urls), with a securityContext naming the
    Patient, the DocumentReference (relative or absolute) or nothing. Returns the Binaries."""
    folder.mkdir()
    for path in embedded.glob("*"):
        if path.name != "DocumentReference.ndjson":
            (folder / path.name).write_bytes(path.read_bytes())
    documents, binaries = [], []
    for n, line in enumerate((embedded / "DocumentReference.ndjson").read_bytes().splitlines()):
        document = orjson.loads(line)
        attachment = document["content"][0]["attachment"]
        binary_id = f"note-{n}"
        binary = {
            "resourceType": "Binary",
            "id": binary_id,
            "contentType": attachment.pop("contentType"),
            "data": attachment.pop("data"),
        }
        attachment["contentType"] = binary["contentType"]
        attachment["url"] = (
            f"Binary/{binary_id}" if n % 2 else f"https://ehr.example.org/fhir/Binary/{binary_id}"
        )
        context = (
            document["subject"]["reference"],
            f"DocumentReference/{document['id']}",
            None,
            f"https://ehr.example.org/fhir/DocumentReference/{document['id']}",
        )[n % 4]
        if context:
            binary["securityContext"] = {"reference": context}
        documents.append(document)
        binaries.append(binary)
    (folder / "DocumentReference.ndjson").write_bytes(
        b"".join(orjson.dumps(d) + b"\n" for d in documents)
    )
    (folder / "Binary.ndjson").write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in binaries))
    return len(binaries)


def narrative_in_the_note(folder) -> None:
    """Move each 97112 narrative from its Procedure into the visit note, so the findings
    depend on the note's text (the documentation rules read the note when the Procedure
    says nothing)."""
    narrative = {}
    procedures = []
    for line in (folder / "Procedure.ndjson").read_bytes().splitlines():
        procedure = orjson.loads(line)
        if procedure["code"]["coding"][0]["code"] == "97112" and procedure.get("note"):
            narrative[procedure["encounter"]["reference"]] = procedure.pop("note")[0]["text"]
        procedures.append(procedure)
    (folder / "Procedure.ndjson").write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in procedures))
    documents = []
    for line in (folder / "DocumentReference.ndjson").read_bytes().splitlines():
        document = orjson.loads(line)
        attachment = document["content"][0]["attachment"]
        text = base64.b64decode(attachment["data"]).decode()
        text += "\n" + narrative.pop(document["context"]["encounter"][0]["reference"], "")
        attachment["data"] = base64.b64encode(text.encode()).decode()
        documents.append(document)
    (folder / "DocumentReference.ndjson").write_bytes(
        b"".join(orjson.dumps(d) + b"\n" for d in documents)
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("binary")
    embedded = root / "embedded"
    visits = encounters_written(60, generate(embedded, visits=60, defect_rate=0.5, seed=7))
    narrative_in_the_note(embedded)
    in_binary = root / "in-binary"
    assert to_binaries(embedded, in_binary) == visits
    return root, embedded, in_binary, visits


def test_notes_only_in_binary_give_the_same_findings(exports):
    root, embedded, in_binary, visits = exports
    expected = run_audit(embedded, root / "out-embedded", buckets=4, progress=False)
    found = run_audit(in_binary, root / "out-binary", buckets=4, progress=False)
    assert found.visits == expected.visits == visits and not found.bad_lines
    for name in ("findings.csv", "visits.csv"):
        assert rows(root / "out-binary" / name) == rows(root / "out-embedded" / name)


def test_without_the_binaries_the_notes_are_missed(exports, tmp_path):
    """The check above can fail: a note whose Binary does not reach its visit reads as empty."""
    root, _, in_binary, _ = exports
    (in_binary / "Binary.ndjson").rename(tmp_path / "Binary.ndjson")
    try:
        run_audit(in_binary, tmp_path / "out", scheduler="sync", buckets=4, progress=False)
    finally:
        (tmp_path / "Binary.ndjson").rename(in_binary / "Binary.ndjson")
    with (tmp_path / "out" / "findings.csv").open() as fh:
        missed = {r["rule"] for r in csv.DictReader(fh)}
    assert {"doc-no-deficit", "doc-no-skilled-intervention"} <= missed


def test_a_binary_no_note_points_at_is_left_out_and_one_named_twice_reaches_both(tmp_path):
    from plugin.batch.passes import join_binaries, route_slice, slices

    folder = tmp_path / "in"
    folder.mkdir()
    documents = [
        {
            "resourceType": "DocumentReference",
            "id": f"d{n}",
            "subject": {"reference": f"Patient/p{n}"},
            "content": [{"attachment": {"url": "Binary/shared"}}],
        }
        for n in range(8)
    ]
    (folder / "DocumentReference.ndjson").write_bytes(
        b"".join(orjson.dumps(d) + b"\n" for d in documents)
    )
    (folder / "Binary.ndjson").write_bytes(
        b'{"resourceType": "Binary", "id": "shared", "data": "eA=="}\n'
        b'{"resourceType": "Binary", "id": "orphan", "data": "eA=="}\n'
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    buckets = 8
    for number, job in enumerate(slices(sorted(folder.glob("*.ndjson")))):
        assert route_slice(job, number, scratch, buckets) == []
    unclaimed = sum(join_binaries(j, scratch) for j in range(buckets))
    assert unclaimed == 1
    holders = set()
    for path in scratch.glob("b*-j*.ndjson"):
        lines = path.read_bytes().splitlines()
        assert [orjson.loads(line)["id"] for line in lines] == ["shared"]
        holders.add(int(path.name[1:6]))
    from plugin.batch.passes import _bucket

    assert holders == {_bucket(f"p{n}", buckets) for n in range(8)}


def test_odd_binaries_and_note_links_never_stop_the_audit(exports, tmp_path):
    _, embedded, _, visits = exports
    folder = tmp_path / "in"
    folder.mkdir()
    for path in embedded.glob("*.ndjson"):
        (folder / path.name).write_bytes(path.read_bytes())
    odd_binaries = [
        {"resourceType": "Binary"},
        {"resourceType": "Binary", "id": 42, "securityContext": "Patient/v1-pat-1"},
        {"resourceType": "Binary", "id": "a", "securityContext": {"reference": 5}},
        {"resourceType": "Binary", "id": "b", "securityContext": {"reference": "Patient/"}},
        {"resourceType": "Binary", "id": "c", "securityContext": [1, 2]},
        {"resourceType": "Binary", "id": "d", "securityContext": {"reference": "Patient/nobody"}},
    ]
    (folder / "Binary.ndjson").write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in odd_binaries))
    odd_documents = [
        {"resourceType": "DocumentReference", "id": "x1", "content": "text"},
        {"resourceType": "DocumentReference", "id": "x2", "content": [{"attachment": {"url": 42}}]},
        {"resourceType": "DocumentReference", "content": [{"attachment": {"url": "Binary/a"}}]},
        {
            "resourceType": "DocumentReference",
            "id": "x3",
            "subject": {"reference": "Patient/v2-pat-1"},
            "context": {"encounter": [{"reference": "Encounter/v2-enc-1"}]},
            "content": [{"attachment": {"url": "Binary/42"}}, {"attachment": "nope"}],
        },
    ]
    with (folder / "DocumentReference.ndjson").open("ab") as fh:
        fh.write(b"".join(orjson.dumps(d) + b"\n" for d in odd_documents))
    result = run_audit(folder, tmp_path / "out", buckets=4, progress=False)
    assert result.visits == visits and not result.bad_lines
