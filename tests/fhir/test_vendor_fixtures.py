"""The vendor-shaped fixture visits (fixtures/vendor) are valid FHIR and hold together.

Each file must parse as an R4B Bundle with no validation error, every reference in it (the note's
Binary first of all) must resolve inside the same Bundle, ids must not collide with any other
fixture, the files must be exactly what make_vendor.py writes, and what expected.json says a
reader of the chart sees (the minutes per code) must be what the note states. Whether the review
agrees with expected.json is a separate test, written once the reader follows Binary notes.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
VENDOR = FIXTURES / "vendor"
MANIFEST = json.loads((VENDOR / "expected.json").read_text())
CASES = MANIFEST["cases"]
FILES = sorted({case["file"] for case in CASES})


def load(name: str) -> dict:
    return json.loads((VENDOR / name).read_text())


def resources(bundle: dict) -> list[dict]:
    return [entry["resource"] for entry in bundle.get("entry", [])]


def references(node: object):
    """Every Reference.reference string anywhere under ``node``."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def targets(bundle: dict) -> set[str]:
    """What a reference may name to land inside the Bundle: Type/id or the entry's fullUrl."""
    found = set()
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        if "id" in resource:
            found.add(f"{resource['resourceType']}/{resource['id']}")
        found.add(entry["fullUrl"])
    return found


def note_text(binary: dict) -> list[str]:
    """The note's paragraphs, whatever the Binary's format (plain, HTML, RTF)."""
    raw = base64.b64decode(binary["data"]).decode("utf-8")
    return [re.sub(r"<[^>]+>", " ", part) for part in re.split(r"\n|<p>|\\par ", raw)]


def test_the_manifest_names_four_epic_and_four_oracle_visits():
    vendors = {case["file"]: case["vendor"] for case in CASES}
    assert sum(v == "epic" for v in vendors.values()) >= 4
    assert sum(v == "oracle" for v in vendors.values()) >= 4
    for name in FILES:
        assert name.startswith(vendors[name] + "_"), name
    on_disk = {p.name for p in VENDOR.glob("*.json")} - {"expected.json"}
    assert on_disk == set(FILES), "every vendor fixture has its expected.json case"


@pytest.mark.parametrize("name", FILES)
def test_fixture_is_a_valid_r4b_bundle(name):
    bundle = Bundle.model_validate(load(name))
    assert bundle.entry, name


@pytest.mark.parametrize("name", FILES)
def test_every_reference_resolves_inside_its_bundle(name):
    """Type/id or a fullUrl of the Bundle, or ``#id`` of a resource its holder contains."""
    bundle = load(name)
    inside = targets(bundle)
    dangling = set()
    for resource in resources(bundle):
        contained = {f"#{c['id']}" for c in resource.get("contained", [])}
        dangling |= {ref for ref in references(resource) if ref not in inside | contained}
    assert not dangling, f"{name}: {sorted(dangling)}"


@pytest.mark.parametrize("name", FILES)
def test_each_note_is_a_binary_the_document_reference_points_at(name):
    bundle = load(name)
    inside = targets(bundle)
    binaries = {f"Binary/{r['id']}": r for r in resources(bundle) if r["resourceType"] == "Binary"}
    documents = [r for r in resources(bundle) if r["resourceType"] == "DocumentReference"]
    assert documents and binaries
    pointed = set()
    for document in documents:
        for content in document["content"]:
            attachment = content["attachment"]
            assert "data" not in attachment, "the text lives in a Binary, as the vendors send it"
            url = attachment["url"]
            assert url in inside, f"{url} does not resolve in {name}"
            key = url if url in binaries else "/".join(url.rsplit("/", 2)[-2:])
            assert binaries[key]["contentType"] == attachment["contentType"]
            pointed.add(key)
    assert pointed == set(binaries), "no Binary is left without its DocumentReference"


def ids_of(path: Path) -> list[str]:
    return [
        f"{r['resourceType']}/{r['id']}"
        for r in resources(json.loads(path.read_text()))
        if "id" in r
    ]


def test_vendor_ids_are_unique_across_all_fixtures():
    """The generated fixtures share Practitioners on purpose; vendor ids clash with nothing."""
    generated = {
        key
        for path in FIXTURES.glob("*.json")
        if path.name != "expected.json"
        for key in ids_of(path)
    }
    seen: dict[str, str] = {}
    for name in FILES:
        for key in ids_of(VENDOR / name):
            assert key not in generated, f"{key} of {name} is also in fixtures/"
            assert key not in seen, f"{key} is in {name} and {seen.get(key)}"
            seen[key] = name


@pytest.mark.parametrize("name", FILES)
def test_ids_carry_the_file_name(name):
    prefix = Path(name).stem.replace("_", "-") + "-"
    for resource in resources(load(name)):
        if "id" in resource:
            assert resource["id"].startswith(prefix), resource["id"]


@pytest.mark.parametrize("script", ["make_vendor", "make_shapes"])
def test_the_files_are_what_the_scripts_write(script):
    spec = importlib.util.spec_from_file_location(script, VENDOR / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for visit in module.VISITS:
        assert module.build(visit) == load(visit["stem"] + ".json"), visit["stem"]


def test_every_file_is_written_by_a_script_and_names_its_source_in_the_readme():
    readme = (VENDOR / "README.md").read_text()
    written = set()
    for script in ("make_vendor", "make_shapes"):
        spec = importlib.util.spec_from_file_location(script, VENDOR / f"{script}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        written |= {visit["stem"] + ".json" for visit in module.VISITS}
    assert written == set(FILES)
    for name in FILES:
        assert f"| {name} |" in readme, f"{name} has no row in fixtures/vendor/README.md"


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_expected_minutes_are_what_the_note_states(case):
    bundle = load(case["file"])
    assert f"Encounter/{case['encounter']}" in targets(bundle)
    binaries = [r for r in resources(bundle) if r["resourceType"] == "Binary"]
    for binary in binaries:
        paragraphs = note_text(binary)
        for code, want in case["services"].items():
            stated = [
                p for p in paragraphs if code in p and re.search(rf"\b{want['minutes']} min", p)
            ]
            assert stated, f"{binary['id']} does not state {code} {want['minutes']} min"
        totals = " ".join(paragraphs)
        assert f"Total timed code minutes: {case['total_timed_minutes']}" in totals
        assert f"Total treatment time: {case['total_treatment_minutes']} min" in totals
    assert sum(s["minutes"] for s in case["services"].values()) == case["total_timed_minutes"]
