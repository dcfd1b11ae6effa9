"""Builders of realistic synthetic FHIR R4 visit Bundles (no real patient data): tests,
fixtures and `unitguard synth` use them."""

from __future__ import annotations

import base64
import copy
import json
import random
from typing import Any

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NUCC = "http://nucc.org/provider-taxonomy"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ROLES = {
    "PT": "225100000X",
    "PTA": "225200000X",
    "OT": "225X00000X",
    "OTA": "224Z00000X",
    "SLP": "235Z00000X",
}
# Invented names of the synthetic clinic's staff (no real person).
STAFF_NAMES = {
    "PT": ("Dana", "Reyes", "PT"),
    "PTA": ("Sam", "Ortiz", "PTA"),
    "OT": ("Lee", "Park", "OT"),
    "OTA": ("Rui", "Costa", "COTA"),
    "SLP": ("Mo", "Ahmed", "SLP"),
}
MRN_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}

CLEAN_NOTE = (
    "Pt with impaired single-leg balance and decreased proprioception R ankle after TKA. "
    "Perturbation training on foam and tandem stance with mod verbal and tactile cues for hip "
    "strategy; PNF D2 patterns with manual facilitation. Pt tolerated well, decreased sway, "
    "progressed from min A to CGA."
)
CLEAN_VISIT_NOTE = (
    "Treatment note. Deficits: impaired balance, postural instability. Interventions as charted. "
    "Patient response: tolerated session, Berg improved. Total timed minutes documented. "
    "Signed, PT."
)


# Ten PT treatment days before a visit on 2026-03-04 (the episode cases and fixtures).
TEN_TREATMENT_DAYS = (
    "2026-02-02", "2026-02-04", "2026-02-06", "2026-02-09", "2026-02-11",
    "2026-02-13", "2026-02-16", "2026-02-18", "2026-02-20", "2026-02-23",
)  # fmt: skip


def _enc(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class VisitBuilder:
    """One patient, one visit under review (enc-1), optional earlier visits and claims."""

    def __init__(
        self,
        day: str = "2026-03-04",
        payer: str = "Medicare Part B",
        sopt: str | None = "1",
        length: int | None = 60,
        signed: bool = True,
        visit_note: str = CLEAN_VISIT_NOTE,
        goal: bool = True,
        measure: bool = True,
        earlier_measure: bool = True,
        plan_of_care: bool = True,
    ) -> None:
        self.day = day
        self.entries: list[dict] = []
        self.claim_items: list[dict] = []
        self.allowed: dict[int, float] = {}  # id(claim item) -> payer-allowed amount
        self.counter = 0
        self.add(
            {
                "resourceType": "Patient",
                "id": "pat-1",
                "identifier": [{"type": MRN_TYPE, "value": "100001"}],
                "name": [{"given": ["Alex"], "family": "Example"}],
            }
        )
        enc: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": "enc-1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/pat-1"},
            "period": {"start": f"{day}T09:00:00-05:00", "end": f"{day}T10:30:00-05:00"},
        }
        if length is not None:
            enc["length"] = {
                "value": length,
                "unit": "min",
                "code": "min",
                "system": "http://unitsofmeasure.org",
            }
        self.encounter = self.add(enc)
        for role in ROLES:
            self.add(
                {
                    "resourceType": "Practitioner",
                    "id": role.lower(),
                    "name": [
                        {
                            "given": [STAFF_NAMES[role][0]],
                            "family": STAFF_NAMES[role][1],
                            "suffix": [STAFF_NAMES[role][2]],
                        }
                    ],
                    "qualification": [
                        {"code": {"coding": [{"system": NUCC, "code": ROLES[role]}]}}
                    ],
                }
            )
        cov: dict[str, Any] = {
            "resourceType": "Coverage",
            "id": "cov-1",
            "status": "active",
            "beneficiary": {"reference": "Patient/pat-1"},
            "payor": [{"display": payer}],
        }
        if sopt:
            cov["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": sopt}]}
        self.add(cov)
        if plan_of_care:
            self.plan_of_care()
        if goal:
            self.add(
                {
                    "resourceType": "Goal",
                    "id": "goal-1",
                    "lifecycleStatus": "active",
                    "subject": {"reference": "Patient/pat-1"},
                    "description": {"text": "Berg >= 48/56 to reach overhead safely"},
                    "target": [
                        {
                            "measure": {"text": "Berg"},
                            "detailQuantity": {"value": 48},
                            "dueDate": "2026-04-30",
                        }
                    ],
                }
            )
        if measure:
            self.observation("enc-1", f"{day}T09:05:00-05:00", 44)
        if earlier_measure:
            self.observation(None, "2026-02-10T09:05:00-05:00", 38)
        self.document("enc-1", visit_note, signed=signed)

    def plan_of_care(
        self,
        start: str | None = None,
        end: str | None = None,
        certified: str | None = None,
        plan_id: str = "poc-1",
        discipline: str = "Physical therapy",
    ) -> dict:
        """A plan of care certified by a physician (contributor, dated by ``created``): by
        default from two weeks before the visit for 60 days, signed on its first day."""
        from datetime import date, timedelta

        day = date.fromisoformat(self.day)
        start = start or (day - timedelta(days=14)).isoformat()
        end = end or (date.fromisoformat(start) + timedelta(days=59)).isoformat()
        if not any(e["resource"].get("id") == "md" for e in self.entries):
            self.add(
                {
                    "resourceType": "Practitioner",
                    "id": "md",
                    "name": [{"family": "Referrer", "given": ["Morgan"]}],
                    "qualification": [{"code": {"text": "MD"}}],
                }
            )
        plan: dict[str, Any] = {
            "resourceType": "CarePlan",
            "id": plan_id,
            "status": "active",
            "intent": "plan",
            "title": f"{discipline} plan of care",
            # US Core files a plan of treatment under assess-plan (Epic's CarePlan search
            # requires a category); the text names the discipline.
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                            "code": "assess-plan",
                        }
                    ],
                    "text": discipline,
                }
            ],
            "subject": {"reference": "Patient/pat-1"},
            "period": {"start": start, "end": end},
            "author": {"reference": "Practitioner/pt"},
        }
        if certified != "never":
            plan["created"] = certified or start
            plan["contributor"] = [{"reference": "Practitioner/md"}]
        return self.add(plan)

    def order_and_plan_sent(
        self, ordered: str, sent: str, plan_id: str = "poc-1", by: str = "md"
    ) -> None:
        """The CY2025 order exception's evidence: a physician's signed, dated order and a
        Communication sending the plan of care to that physician."""
        self.add(
            {
                "resourceType": "ServiceRequest",
                "id": "order-1",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/pat-1"},
                "authoredOn": ordered,
                "requester": {"reference": f"Practitioner/{by}"},
            }
        )
        self.add(
            {
                "resourceType": "Communication",
                "id": "sent-1",
                "status": "completed",
                "subject": {"reference": "Patient/pat-1"},
                "about": [{"reference": f"CarePlan/{plan_id}"}],
                "sent": f"{sent}T10:00:00-05:00",
                "recipient": [{"reference": f"Practitioner/{by}"}],
            }
        )

    def treatment_days(self, days: tuple[str, ...], code: str = "97112") -> None:
        """Earlier visits of the patient, one per date, each with a treated code."""
        for n, day in enumerate(days):
            self.earlier_visit(
                f"enc-d{n}", day, note="Balance training with verbal cues; tolerated."
            )

    def progress_report(self, day: str, author: str = "pt", loinc: str = "11508-9") -> dict:
        """A progress report (LOINC 11508-9, physical therapy) written on ``day``."""
        return self.add(
            {
                "resourceType": "DocumentReference",
                "id": f"report-{day}-{author}",
                "status": "current",
                "docStatus": "final",
                "type": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "description": "Daily progress note"
                if loinc == "11506-3"
                else "Physical therapy progress report",
                "subject": {"reference": "Patient/pat-1"},
                "date": f"{day}T16:00:00-05:00",
                "author": [{"reference": f"Practitioner/{author}"}],
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain",
                            "data": _enc("Progress toward each goal; plan continues."),
                        }
                    }
                ],
            }
        )

    def add(self, resource: dict) -> dict:
        self.entries.append(
            {
                "fullUrl": f"https://ehr.example.org/fhir/{resource['resourceType']}/"
                f"{resource['id']}",
                "resource": resource,
            }
        )
        return resource

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def at(self, hhmm: str, day: str | None = None) -> str:
        return f"{day or self.day}T{hhmm}:00-05:00"

    def observation(
        self, encounter: str | None, when: str, value: float, loinc: str = "89432-3"
    ) -> dict:
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self._id("obs"),
            "status": "final",
            # US Core requires a category, and Epic searches Observations by it (ehr.md).
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "subject": {"reference": "Patient/pat-1"},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": "{score}"},
        }
        if encounter:
            obs["encounter"] = {"reference": f"Encounter/{encounter}"}
        return self.add(obs)

    def document(self, encounter: str, text: str, signed: bool = True) -> dict:
        doc: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "id": self._id("doc"),
            "status": "current",
            "docStatus": "final" if signed else "preliminary",
            "subject": {"reference": "Patient/pat-1"},
            "context": {"encounter": [{"reference": f"Encounter/{encounter}"}]},
            "content": [{"attachment": {"contentType": "text/plain", "data": _enc(text)}}],
        }
        if signed:
            doc["authenticator"] = {"reference": "Practitioner/pt"}
        return self.add(doc)

    def proc(
        self,
        code: str,
        start: str | None,
        end: str | None,
        performer: str = "PT",
        note: str = CLEAN_NOTE,
        goals: tuple[str, ...] = ("goal-1",),
        encounter: str = "enc-1",
        day: str | None = None,
        system: str = CPT,
        status: str = "completed",
        performers: tuple[str, ...] | None = None,
    ) -> dict:
        proc: dict[str, Any] = {
            "resourceType": "Procedure",
            "id": self._id("proc"),
            "status": status,
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": "Patient/pat-1"},
            "encounter": {"reference": f"Encounter/{encounter}"},
            "performer": [
                {"actor": {"reference": f"Practitioner/{p.lower()}"}}
                for p in (performers or (performer,))
            ],
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal",
                    "valueReference": {"reference": f"Goal/{g}"},
                }
                for g in goals
            ],
        }
        if start and end:
            proc["performedPeriod"] = {"start": self.at(start, day), "end": self.at(end, day)}
        if note:
            proc["note"] = [{"text": note}]
        return self.add(proc)

    def line(
        self,
        code: str,
        units: int,
        mods: tuple[str, ...] = ("GP",),
        amount: float | None = None,
        encounter: str = "enc-1",
        day: str | None = None,
        allowed: float | None = None,
    ) -> dict:
        """A Claim item; ``allowed`` adds the payer's adjudicated allowed amount for it (a
        ClaimResponse item, category ``eligible``), as a payer's remittance would."""
        item: dict[str, Any] = {
            "sequence": len(self.claim_items) + 1,
            "productOrService": {"coding": [{"system": CPT, "code": code}]},
            "modifier": [{"coding": [{"code": m}]} for m in mods],
            "quantity": {"value": units},
            "servicedDate": day or self.day,
            "encounter": [{"reference": f"Encounter/{encounter}"}],
            "net": {"value": amount if amount is not None else 35.0 * units, "currency": "USD"},
        }
        self.claim_items.append(item)
        if allowed is not None:
            self.allowed[id(item)] = allowed
        return item

    def earlier_visit(self, enc_id: str, day: str, note: str | None = None) -> None:
        self.add(
            {
                "resourceType": "Encounter",
                "id": enc_id,
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "Patient/pat-1"},
                "period": {"start": f"{day}T09:00:00-05:00"},
            }
        )
        if note:
            self.proc("97112", "09:00", "09:20", note=note, encounter=enc_id, day=day)

    def bundle(self) -> dict:
        entries = copy.deepcopy(self.entries)
        by_claim: dict[str, list[dict]] = {}
        for item in self.claim_items:
            ref = item["encounter"][0]["reference"]
            by_claim.setdefault(ref, []).append(item)
        for n, (_ref, items) in enumerate(sorted(by_claim.items())):
            claim = {
                "resourceType": "Claim",
                "id": f"claim-{n + 1}",
                "status": "active",
                "use": "claim",
                "type": {"coding": [{"code": "professional"}]},
                "patient": {"reference": "Patient/pat-1"},
                "created": items[0]["servicedDate"],
                "billablePeriod": {"start": items[0]["servicedDate"]},
                "provider": {"display": "Example Therapy Clinic"},
                "priority": {"coding": [{"code": "normal"}]},
                "insurance": [
                    {"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov-1"}}
                ],
                "item": copy.deepcopy(items),
            }
            entries.append(
                {"fullUrl": f"https://ehr.example.org/fhir/Claim/claim-{n + 1}", "resource": claim}
            )
            adjudicated = [
                {
                    "itemSequence": item["sequence"],
                    "adjudication": [
                        {
                            "category": {"coding": [{"code": "eligible"}]},
                            "amount": {"value": self.allowed[id(item)], "currency": "USD"},
                        }
                    ],
                }
                for item in items
                if id(item) in self.allowed
            ]
            if adjudicated:
                response = {
                    "resourceType": "ClaimResponse",
                    "id": f"claimresponse-{n + 1}",
                    "status": "active",
                    "use": "claim",
                    "type": {"coding": [{"code": "professional"}]},
                    "patient": {"reference": "Patient/pat-1"},
                    "created": items[0]["servicedDate"],
                    "insurer": {"display": "Medicare Part B"},
                    "request": {"reference": f"Claim/claim-{n + 1}"},
                    "outcome": "complete",
                    "item": adjudicated,
                }
                url = f"https://ehr.example.org/fhir/ClaimResponse/claimresponse-{n + 1}"
                entries.append({"fullUrl": url, "resource": response})
        return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def clean_visit(**kwargs: Any) -> VisitBuilder:
    """CMS worked example 1: 97112 24 min + 97110 23 min, billed 2 + 1 with GP."""
    b = VisitBuilder(**kwargs)
    b.proc("97112", "09:00", "09:24")
    b.proc(
        "97110",
        "09:24",
        "09:47",
        goals=("goal-2",),
        note="Therapeutic exercise for quad strength, 3x10 reps, theraband; tolerated well.",
    )
    b.add(
        {
            "resourceType": "Goal",
            "id": "goal-2",
            "lifecycleStatus": "active",
            "subject": {"reference": "Patient/pat-1"},
            "description": {"text": "Quad strength 5/5 for stairs"},
            "target": [{"measure": {"text": "MMT"}, "detailQuantity": {"value": 5}}],
        }
    )
    b.line("97112", 2)
    b.line("97110", 1)
    return b


SHARED = {"Practitioner"}  # the clinic's therapists appear in every fixture under one id


def slug(name: str) -> str:
    return name.replace("_", "-")


def unique_ids(bundle: dict, prefix: str) -> dict:
    """Prefix every resource id (and every reference to it) with the scenario, so all fixtures
    can be loaded into one FHIR server (the sandbox EHR) side by side."""
    renames = {}
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("id") and res["resourceType"] not in SHARED:
            renames[f"{res['resourceType']}/{res['id']}"] = (
                f"{res['resourceType']}/{prefix}-{res['id']}"
            )
    text = json.dumps(bundle)
    for old, new in sorted(renames.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f'"{old}"', f'"{new}"').replace(f'/{old}"', f'/{new}"')
    bundle = json.loads(text)
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("id") and res["resourceType"] not in SHARED:
            res["id"] = f"{prefix}-{res['id']}"
    return bundle


BENCHMARK_CODES = ["97112", "97110", "97140", "97116", "97530"]
BENCHMARK_NOTES = [
    CLEAN_NOTE,
    "Patient performed balance exercises independently, no cues needed.",
    "Quad strengthening with theraband, squats 3x10 reps for strength; tolerated.",
    "Gait training with verbal cues for step length; decreased sway; tolerated well.",
]


def with_figures(rng: random.Random, note: str) -> str:
    """``note`` with this visit's own test figures. Real notes differ from visit to visit, so
    the benchmark's must too: drawn from four fixed texts, a memo keyed by the text hit on
    every visit and made the review look about 9% cheaper than on real notes."""
    return f"{note} Berg {rng.randint(28, 54)}/56, TUG {rng.randint(8, 20)}.{rng.randint(0, 9)} s."


def benchmark_visit(rng: random.Random, n: int) -> dict:
    """One Bundle of the speed benchmarks' mix (``benchmarks/review_bench.py``), also the
    workload the compiled build is trained on (setup.py): one to three timed codes with their
    minutes, sometimes overlapping or over-billed, a tenth unsigned, varied modifiers, half
    with an earlier visit, and every note with its own figures."""
    b = VisitBuilder(
        day=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        length=rng.choice([None, 45, 60, 75]),
        signed=rng.random() > 0.1,
        visit_note=with_figures(rng, CLEAN_VISIT_NOTE),
    )
    clock = 9 * 60
    for code in rng.sample(BENCHMARK_CODES, rng.randint(1, 3)):
        minutes = rng.randint(5, 35)
        start, end = clock, clock + minutes
        clock = end - (rng.randint(0, 5) if rng.random() < 0.1 else 0)
        b.proc(
            code,
            f"{start // 60:02d}:{start % 60:02d}",
            f"{end // 60:02d}:{end % 60:02d}",
            note=with_figures(rng, rng.choice(BENCHMARK_NOTES)),
        )
        b.line(
            code,
            max(1, (minutes + 7) // 15 + (1 if rng.random() < 0.15 else 0)),
            mods=rng.choice([("GP",), ("GP",), ("GP", "KX"), ()]),
        )
    if rng.random() < 0.5:
        b.earlier_visit(
            f"enc-h{n}", "2026-01-02", note=with_figures(rng, rng.choice(BENCHMARK_NOTES))
        )
        b.line("97110", 2, encounter=f"enc-h{n}", day="2026-01-02")
    return b.bundle()
