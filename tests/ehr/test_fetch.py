"""fetch_visit gathers a visit within 6 rounds under each EHR's rules, and reviews the same."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from plugin.ehr import FetchError, FetchStats, SearchResult, fetch_visit
from plugin.review import review_bundle

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

PROFILES = {
    # type -> searchable params, as each server's CapabilityStatement declares (ehr.md)
    "epic": {
        "Encounter": {"patient", "date"},
        "Procedure": {"encounter", "patient", "date"},
        "Observation": {"encounter", "patient"},
        "Goal": {"patient"},
        "Condition": {"patient", "encounter"},
        "DocumentReference": {"patient", "encounter"},
        "Coverage": {"beneficiary"},
        "Practitioner": set(),
        "Claim": {"_id"},
    },
    "oracle": {
        "Encounter": {"patient", "date"},
        "Procedure": {"patient", "date"},
        "Observation": {"patient", "date"},
        "Goal": {"patient"},
        "Condition": {"patient"},
        "DocumentReference": {"patient", "encounter"},
        "Coverage": {"beneficiary"},
        "Practitioner": set(),
        "ChargeItem": {"context", "_id"},
    },
    "full": {
        "Encounter": {"patient", "date"},
        "Procedure": {"encounter", "patient", "date"},
        "Observation": {"encounter", "patient"},
        "Goal": {"patient"},
        "Condition": {"patient"},
        "DocumentReference": {"patient", "encounter"},
        "Coverage": {"beneficiary"},
        "Practitioner": set(),
        "Claim": {"patient", "encounter"},
        "ChargeItem": {"context"},
    },
}


class FakeEhr:
    """Serves a Bundle's resources with one profile's capabilities; refuses anything else."""

    def __init__(self, bundle: dict, profile: str) -> None:
        self.profile = PROFILES[profile]
        self.resources = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] in self.profile
        ]
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def capabilities(self) -> dict:
        self._log("metadata")
        return {
            "resourceType": "CapabilityStatement",
            "rest": [
                {
                    "resource": [
                        {"type": t, "searchParam": [{"name": p} for p in sorted(ps)]}
                        for t, ps in self.profile.items()
                    ]
                }
            ],
        }

    def _log(self, call: str) -> None:
        with self.lock:
            self.calls.append(call)

    def read(self, rtype: str, rid: str) -> dict:
        self._log(f"read {rtype}")
        for r in self.resources:
            if r["resourceType"] == rtype and r["id"] == rid:
                return r
        raise FetchError(f"{rtype}/{rid} not found")

    def search(self, rtype: str, params: dict[str, str]) -> SearchResult:
        self._log(f"search {rtype}")
        allowed = self.profile.get(rtype)
        if allowed is None or not set(params) <= allowed:
            raise AssertionError(f"{rtype}?{sorted(params)} is refused by this server")
        out = [
            r
            for r in self.resources
            if r["resourceType"] == rtype and all(self._matches(r, k, v) for k, v in params.items())
        ]
        return SearchResult(out)

    @staticmethod
    def _matches(resource: dict, key: str, value: str) -> bool:
        if key == "date":
            when = (resource.get("period") or resource.get("performedPeriod") or {}).get(
                "start", ""
            )
            return when[:10] >= value.removeprefix("ge")
        field = {
            "patient": ("subject", "patient", "beneficiary"),
            "beneficiary": ("beneficiary",),
            "encounter": ("encounter",),
            "context": ("context",),
        }[key]
        ref = f"Patient/{value}" if key == "patient" else value
        for name in field:
            target = resource.get(name)
            refs = (
                [t.get("reference") for t in target]
                if isinstance(target, list)
                else [(target or {}).get("reference")]
            )
            if ref in refs:
                return True
        return False


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def enc(name: str) -> str:
    """The visit of a fixture file: its ids carry the scenario (fixtures/generate.py)."""
    return f"{name.removesuffix('.json').replace('_', '-')}-enc-1"


def findings(bundle: dict, encounter: str) -> set[tuple[str, str | None]]:
    return {(f.rule, f.code) for f in review_bundle(bundle, encounter_id=encounter).findings}


@pytest.mark.parametrize(
    "name",
    [
        "units_exceed.json",
        "kx_missing.json",
        "cloned_note.json",
        "modifier_mismatch.json",
        "no_progress.json",
    ],
)
def test_full_profile_gives_the_same_review_as_the_file(name):
    bundle = load(name)
    stats = FetchStats()
    fetched = fetch_visit(FakeEhr(bundle, "full"), enc(name), stats=stats)
    assert findings(fetched, enc(name)) == findings(bundle, enc(name))
    assert stats.rounds <= 6


def test_oracle_reads_charge_items_without_encounter_searches():
    bundle = load("oracle_chargeitem.json")
    ehr = FakeEhr(bundle, "oracle")
    stats = FetchStats()
    visit = enc("oracle_chargeitem")
    fetched = fetch_visit(ehr, visit, stats=stats)
    report = review_bundle(fetched, encounter_id=visit)
    assert report.visit.billed is not None and len(report.visit.billed) == 2
    assert findings(fetched, visit) == findings(bundle, visit)
    assert stats.rounds == 3 and "search ChargeItem" in ehr.calls


def test_epic_has_no_charges_so_the_review_runs_before_charges():
    bundle = load("units_exceed.json")
    ehr = FakeEhr(bundle, "epic")
    stats = FetchStats()
    visit = enc("units_exceed")
    report = review_bundle(fetch_visit(ehr, visit, stats=stats), encounter_id=visit)
    assert report.visit.billed is None
    assert not [f for f in report.findings if f.rule == "units-exceed-time"]
    assert {s.code: s.supported_units for s in report.services} == {"97112": 1}
    assert not [c for c in ehr.calls if "Claim" in c or "ChargeItem" in c]
    assert stats.rounds <= 6


def test_unknown_encounter_is_a_fetch_error():
    with pytest.raises(FetchError, match="Encounter/nope"):
        fetch_visit(FakeEhr(load("units_exceed.json"), "full"), "nope")
