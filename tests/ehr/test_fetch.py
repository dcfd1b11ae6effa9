"""fetch_visit gathers a visit within 6 rounds under each EHR's rules, and reviews the same."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime
from pathlib import Path

import pytest

from plugin.ehr import FetchError, FetchStats, SearchResult, fetch_visit
from plugin.review import review_bundle
from sandbox.profiles import PROFILES as VENDOR_RULES
from smart_launch.errors import FhirRequestError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

PROFILES = {
    # type -> searchable params, as each server's CapabilityStatement declares (ehr.md)
    "epic": {
        "Encounter": {"patient", "date"},
        "Procedure": {"encounter", "patient", "date"},
        "Observation": {"encounter", "patient", "category"},
        "Goal": {"patient"},
        "Condition": {"patient", "encounter"},
        "DocumentReference": {"patient", "encounter"},
        "Coverage": {"beneficiary", "patient"},
        "Practitioner": set(),
        "Claim": {"_id"},
        "CarePlan": {"patient", "category"},
        "ServiceRequest": {"patient"},
        "Communication": {"patient"},
    },
    "oracle": {
        "Encounter": {"patient", "date"},
        "Procedure": {"patient", "date"},
        "Observation": {"patient", "date"},
        "Goal": {"patient"},
        "Condition": {"patient"},
        "DocumentReference": {"patient", "encounter"},
        "Coverage": {"_id", "patient", "-encounter"},  # no beneficiary (its statement)
        "Practitioner": set(),
        "ChargeItem": {"context", "_id", "-status"},
        "CarePlan": {"patient", "_id"},
        "Provenance": {"target", "_id"},
        "ServiceRequest": {"patient"},
        "Communication": {"_id", "category", "received", "recipient", "-email-status"},
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
        "CarePlan": {"patient"},
        "Provenance": {"target"},
        "ServiceRequest": {"patient"},
        "Communication": {"patient"},
    },
}

# CarePlan declares searchRevInclude Provenance:target at both vendors (their statements); the
# full profile declares none, so the fetch asks for Provenance by target a round later.
REVINCLUDE = {"epic": {"CarePlan"}, "oracle": {"CarePlan"}, "full": set()}


VENDOR = {  # how each vendor's CapabilityStatement names it
    "epic": {"software": {"name": "Epic", "version": "May 2026"}},
    "oracle": {"publisher": "Oracle Health"},
    "full": {},
}


class FakeEhr:
    """Serves a Bundle's resources with one profile's capabilities: a parameter the statement
    does not declare fails the test; a search the vendor refuses (the sandbox profile's rules,
    or a type named in ``refusing``) raises the FHIR client's 400 error."""

    def __init__(self, bundle: dict, profile: str, refusing: frozenset[str] = frozenset()) -> None:
        self.name = profile
        self.refusing = refusing
        self.profile = PROFILES[profile]
        # Provenance is kept even where it is not searched: Epic serves it read-only, reached
        # by CarePlan's _revinclude.
        self.resources = [
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] in self.profile
            or e["resource"]["resourceType"] == "Provenance"
        ]
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def capabilities(self) -> dict:
        self._log("metadata")
        return {
            "resourceType": "CapabilityStatement",
            **VENDOR[self.name],
            "rest": [
                {
                    "resource": [
                        {
                            "type": t,
                            "searchParam": [{"name": p} for p in sorted(ps)],
                            **(
                                {"searchRevInclude": ["Provenance:target"]}
                                if t in REVINCLUDE[self.name]
                                else {}
                            ),
                        }
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

    def search(self, rtype: str, params: dict) -> SearchResult:
        self._log(f"search {rtype}")
        allowed = self.profile.get(rtype)
        params = dict(params)
        revinclude = params.pop("_revinclude", None)
        if allowed is None or not set(params) <= allowed:
            raise AssertionError(f"{rtype}?{sorted(params)} is not declared by this server")
        if revinclude and rtype not in REVINCLUDE[self.name]:
            raise AssertionError(f"{rtype} declares no _revinclude here")
        pairs = [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])]
        why = VENDOR_RULES[self.name].refusal(rtype, pairs)
        if why or rtype in self.refusing:
            raise FhirRequestError(400, f"http://ehr.test/fhir/{rtype}?x=1", why or "refused")
        out = [
            r
            for r in self.resources
            if r["resourceType"] == rtype and all(self._matches(r, k, v) for k, v in pairs)
        ]
        if revinclude == "Provenance:target":
            keys = {f"{r['resourceType']}/{r['id']}" for r in out}
            out += [
                r
                for r in self.resources
                if r["resourceType"] == "Provenance"
                and keys & {t.get("reference") for t in r.get("target", [])}
            ]
        return SearchResult(out)

    @staticmethod
    def _matches(resource: dict, key: str, value: str) -> bool:
        if key == "date":
            start = (resource.get("period") or resource.get("performedPeriod") or {})["start"]
            when = datetime.fromisoformat(start)
            bound = datetime.fromisoformat(value[2:])
            return when >= bound if value.startswith("ge") else when < bound
        if key == "category":
            wanted = set(value.split(","))
            codes = {
                c.get("code") for cat in resource.get("category", []) for c in cat.get("coding", [])
            }
            return bool(wanted & codes)
        if key == "-status":
            return resource.get("status") == value
        if key == "target":
            return bool(
                set(value.split(",")) & {t.get("reference") for t in resource.get("target", [])}
            )
        field = {
            "patient": ("subject", "patient", "beneficiary"),
            "beneficiary": ("beneficiary",),
            "encounter": ("encounter",),
            "context": ("context",),
        }[key]
        # a patient given as its bare id (Epic, Oracle) or as Patient/ID (other servers)
        ref = f"Patient/{value}" if key == "patient" and "/" not in value else value
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


# --- visit notes kept as Binary (Epic, Oracle Health) ------------------------------------------

EHR_BASE = "https://ehr.example.org/fhir/"
NOTE_HTML = (
    "<html><body><style>p{}</style><p>Deficits: impaired single-leg balance and decreased "
    "proprioception R ankle.</p><p>97112: perturbation training on foam with mod verbal and "
    "tactile cues; PNF D2 patterns with manual facilitation.</p><p>Patient response: tolerated "
    "well, decreased sway.</p></body></html>"
)


def binary_visit() -> tuple[dict, list[dict]]:
    """A visit (Epic-like: no charges) whose note is only in a Binary, and an earlier visit whose
    note is a relative Binary/ID; plus a note kept on another server. (bundle, Binaries)."""
    from plugin.synthetic.visit import clean_visit

    b = clean_visit()
    b.earlier_visit("enc-0", "2026-02-20")
    for entry in b.entries:
        resource = entry["resource"]
        if resource["resourceType"] == "Procedure" and "97112" in str(resource["code"]):
            resource["note"] = [{"text": "See note."}]
        if resource["resourceType"] == "DocumentReference":
            resource["content"] = [
                {"attachment": {"contentType": "text/rtf", "url": f"{EHR_BASE}Binary/note-1-rtf"}},
                {"attachment": {"contentType": "text/html", "url": f"{EHR_BASE}Binary/note-1"}},
            ]
    earlier = b.document("enc-0", "unused")
    earlier["content"] = [{"attachment": {"contentType": "text/plain", "url": "Binary/note-0"}}]
    gone = b.document("enc-0", "unused")
    gone["content"] = [{"attachment": {"contentType": "text/plain", "url": "Binary/gone"}}]
    away = b.document("enc-0", "unused")
    away["content"] = [
        {"attachment": {"contentType": "text/plain", "url": "https://other.example/Binary/x"}}
    ]
    binaries = [
        {
            "resourceType": "Binary",
            "id": rid,
            "contentType": kind,
            "data": base64.b64encode(body.encode()).decode(),
        }
        for rid, kind, body in (
            ("note-1", "text/html", NOTE_HTML),
            ("note-1-rtf", "text/rtf", r"{\rtf1 RTF copy}"),
            ("note-0", "text/plain", "Earlier visit: tandem stance with cues."),
        )
    ]
    return b.bundle(), binaries


def test_epic_note_text_is_read_from_binary_in_the_practitioner_round():
    bundle, binaries = binary_visit()
    ehr = FakeEhr(bundle, "epic")
    ehr.base_url = EHR_BASE
    ehr.resources += binaries
    stats = FetchStats()
    fetched = fetch_visit(ehr, "enc-1", stats=stats)

    # One read per note, its most readable format (HTML, not the RTF copy); none on another
    # origin; all in round 3 with the practitioners, so the round count does not grow.
    assert sorted(c for c in ehr.calls if "Binary" in c) == ["read Binary"] * 3
    assert stats.rounds == 3
    kept = {e["resource"].get("id") for e in fetched["entry"]}
    assert {"note-1", "note-0"} <= kept and "note-1-rtf" not in kept

    report = review_bundle(fetched, encounter_id="enc-1")
    assert "perturbation training on foam" in report.visit.note_text
    rules = {f.rule for f in report.findings if f.code == "97112"}
    assert not {"doc-no-deficit", "doc-no-skilled-intervention"} & rules
    notes = report.visit.notes
    # refused, not read: the note names the host (never the patient)
    assert any("a Binary on other.example, a host the EHR list does not name" in n for n in notes)
    assert any("Binary/gone could not be read" in n for n in notes)  # a note, not a failure
    earlier = {v.encounter: v.texts for v in report.visit.earlier_visits}
    assert any("tandem stance" in t for t in earlier["Encounter/enc-0"])


def test_without_binary_reads_the_documentation_is_not_decided():
    # The test above can fail: the note's text is needed. When the EHR does not give it, the
    # 97112 documentation rules do not decide from its absence: reading-incomplete says so.
    bundle, _ = binary_visit()
    ehr = FakeEhr(bundle, "epic")
    ehr.base_url = EHR_BASE
    fetched = fetch_visit(ehr, "enc-1")
    report = review_bundle(fetched, encounter_id="enc-1")
    assert not {"doc-no-deficit", "doc-no-skilled-intervention"} & {f.rule for f in report.findings}
    said = next(f.message for f in report.findings if f.rule == "reading-incomplete")
    assert said.startswith("The visit note's text (DocumentReference/")
    assert "from Epic: the deficit named, the skilled intervention" in said
    assert {"doc-no-deficit", "doc-no-skilled-intervention"} <= set(report.unchecked)
    # The same Bundle without the fetch's notes (as if the text were simply absent) fires them.
    fetched["entry"] = [e for e in fetched["entry"] if e.get("search", {}).get("mode") != "outcome"]
    rules = {f.rule for f in review_bundle(fetched, encounter_id="enc-1").findings}
    assert {"doc-no-deficit", "doc-no-skilled-intervention"} <= rules


def test_a_reader_without_a_base_reads_only_relative_binaries():
    bundle, binaries = binary_visit()
    ehr = FakeEhr(bundle, "epic")  # no base_url: an absolute url cannot be checked
    ehr.resources += binaries
    fetched = fetch_visit(ehr, "enc-1")
    kept = {e["resource"].get("id") for e in fetched["entry"]}
    assert "note-0" in kept and "note-1" not in kept


def test_binary_reads_are_capped(monkeypatch):
    import plugin.ehr.binaries as binaries

    monkeypatch.setattr(binaries, "MAX_BINARY_READS", 1)
    bundle, binaries = binary_visit()
    ehr = FakeEhr(bundle, "epic")
    ehr.base_url = EHR_BASE
    ehr.resources += binaries
    fetched = fetch_visit(ehr, "enc-1")
    assert ehr.calls.count("read Binary") == 1
    kept = {e["resource"].get("id") for e in fetched["entry"]}
    assert "note-1" in kept  # the reviewed visit's note comes first
    report = review_bundle(fetched, encounter_id="enc-1")
    assert any("2 older visit notes kept as Binary were not read" in n for n in report.visit.notes)


def outcome_notes(bundle: dict) -> list[str]:
    return [
        issue["diagnostics"]
        for e in bundle["entry"]
        if e.get("search", {}).get("mode") == "outcome"
        for issue in e["resource"]["issue"]
    ]


@pytest.mark.parametrize(
    ("profile", "name"), [("epic", "no_progress"), ("oracle", "oracle_chargeitem")]
)
def test_searches_follow_the_vendors_rules(profile, name):
    """The vendor's refusals (dates with a time and a closed range, ChargeItem -status, Epic
    Observation by category) would turn into notes: there are none, and the measures arrive."""
    bundle = load(f"{name}.json")
    fetched = fetch_visit(FakeEhr(bundle, profile), enc(name))
    assert outcome_notes(fetched) == []
    observations = [e for e in fetched["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert len(observations) == sum(
        e["resource"]["resourceType"] == "Observation" for e in bundle["entry"]
    )


def test_the_same_searches_break_the_rules_they_were_built_for():
    """Guard for the test above: the rules do refuse what the fetch used to send."""
    epic, oracle = VENDOR_RULES["epic"], VENDOR_RULES["oracle"]
    assert epic.refusal("Observation", [("patient", "p")])
    assert oracle.refusal("Procedure", [("patient", "p"), ("date", "ge2026-01-01")])
    assert oracle.refusal("ChargeItem", [("context", "Encounter/e")])


def test_a_refused_search_becomes_a_reading_note():
    name = "oracle_chargeitem"
    ehr = FakeEhr(load(f"{name}.json"), "oracle", refusing=frozenset({"Goal", "ChargeItem"}))
    fetched = fetch_visit(ehr, enc(name))
    notes = outcome_notes(fetched)
    assert any(n.startswith("the EHR refused the Goal search (400") for n in notes)
    assert any("ChargeItem search (400" in n for n in notes)
    assert not [
        e for e in fetched["entry"] if e["resource"]["resourceType"] in ("Goal", "ChargeItem")
    ]
    assert not [n for n in notes if "oracle-chargeitem-pat-1" in n]
    report = review_bundle(fetched, encounter_id=enc(name))
    assert report.visit.billed is None  # nothing billed could be read, and the review says so
    assert any("refused the ChargeItem search" in n for n in report.visit.notes)


def test_a_search_without_any_answer_still_fails():
    class Silent(FakeEhr):
        def search(self, rtype, params):
            raise FhirRequestError(None, f"http://ehr.test/fhir/{rtype}", "timed out")

    with pytest.raises(FhirRequestError, match="timed out"):
        fetch_visit(Silent(load("units_exceed.json"), "full"), enc("units_exceed"))
