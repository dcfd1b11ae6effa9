"""``VisitBuilder``: one patient's visit under review (enc-1) as a FHIR Bundle, with optional
earlier visits, plan of care and claims; ``clean_visit`` is CMS worked example 1."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

from plugin.synthetic import resources
from plugin.synthetic.resources import CPT, ROLES

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
        self.add(resources.patient())
        self.encounter = self.add(resources.encounter(day, length))
        for role in ROLES:
            self.add(resources.practitioner(role))
        self.add(resources.coverage(payer, sopt))
        if plan_of_care:
            self.plan_of_care()
        if goal:
            self.add(resources.balance_goal())
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
        day = date.fromisoformat(self.day)
        start = start or (day - timedelta(days=14)).isoformat()
        end = end or (date.fromisoformat(start) + timedelta(days=59)).isoformat()
        if not any(e["resource"].get("id") == "md" for e in self.entries):
            self.add(resources.physician())
        return self.add(resources.care_plan(plan_id, discipline, start, end, certified))

    def order_and_plan_sent(
        self, ordered: str, sent: str, plan_id: str = "poc-1", by: str = "md"
    ) -> None:
        """The CY2025 order exception's evidence: a physician's signed, dated order and a
        Communication sending the plan of care to that physician."""
        self.add(resources.order(ordered, by))
        self.add(resources.plan_sent(sent, plan_id, by))

    def treatment_days(self, days: tuple[str, ...], code: str = "97112") -> None:
        """Earlier visits of the patient, one per date, each with a treated code."""
        for n, day in enumerate(days):
            self.earlier_visit(
                f"enc-d{n}", day, note="Balance training with verbal cues; tolerated."
            )

    def progress_report(self, day: str, author: str = "pt", loinc: str = "11508-9") -> dict:
        """A progress report (LOINC 11508-9, physical therapy) written on ``day``."""
        return self.add(resources.progress_report(day, author, loinc))

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
        return self.add(resources.observation(self._id("obs"), encounter, when, value, loinc))

    def document(self, encounter: str, text: str, signed: bool = True) -> dict:
        return self.add(resources.document(self._id("doc"), encounter, text, signed))

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
        proc_id = self._id("proc")
        period = {"start": self.at(start, day), "end": self.at(end, day)} if start and end else None
        return self.add(
            resources.procedure(
                proc_id,
                code,
                period,
                performers or (performer,),
                note,
                goals,
                encounter,
                system,
                status,
            )
        )

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
        sequence = len(self.claim_items) + 1
        item = resources.claim_item(sequence, code, units, mods, amount, encounter, day or self.day)
        self.claim_items.append(item)
        if allowed is not None:
            self.allowed[id(item)] = allowed
        return item

    def earlier_visit(self, enc_id: str, day: str, note: str | None = None) -> None:
        self.add(resources.earlier_encounter(enc_id, day))
        if note:
            self.proc("97112", "09:00", "09:20", note=note, encounter=enc_id, day=day)

    def bundle(self) -> dict:
        """The Bundle (a deep copy): every resource added, then a Claim per encounter billed
        and, where the payer allowed amounts, its ClaimResponse."""
        entries = copy.deepcopy(self.entries)
        by_claim: dict[str, list[dict]] = {}
        for item in self.claim_items:
            ref = item["encounter"][0]["reference"]
            by_claim.setdefault(ref, []).append(item)
        for n, (_ref, items) in enumerate(sorted(by_claim.items())):
            claim = resources.claim(n + 1, copy.deepcopy(items))
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
                response = resources.claim_response(n + 1, adjudicated, items[0]["servicedDate"])
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
    b.add(resources.strength_goal())
    b.line("97112", 2)
    b.line("97110", 1)
    return b
