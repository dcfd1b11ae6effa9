"""The FHIR R4 resources of a synthetic therapy visit, one small function each (invented data)."""

from __future__ import annotations

import base64
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


def text_data(text: str) -> str:
    """An attachment's ``data``: the text, base64-encoded."""
    return base64.b64encode(text.encode()).decode()


def patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": "pat-1",
        "identifier": [{"type": MRN_TYPE, "value": "100001"}],
        "name": [{"given": ["Alex"], "family": "Example"}],
    }


def encounter(day: str, length: int | None) -> dict:
    """The visit under review (enc-1), 09:00 to 10:30, with its total time when charted."""
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
    return enc


def earlier_encounter(enc_id: str, day: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": enc_id,
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/pat-1"},
        "period": {"start": f"{day}T09:00:00-05:00"},
    }


def practitioner(role: str) -> dict:
    """The clinic's therapist in ``role`` (PT, PTA, OT, OTA, SLP), with the role's taxonomy."""
    return {
        "resourceType": "Practitioner",
        "id": role.lower(),
        "name": [
            {
                "given": [STAFF_NAMES[role][0]],
                "family": STAFF_NAMES[role][1],
                "suffix": [STAFF_NAMES[role][2]],
            }
        ],
        "qualification": [{"code": {"coding": [{"system": NUCC, "code": ROLES[role]}]}}],
    }


def physician() -> dict:
    """The referring physician (md), who certifies the plan of care."""
    return {
        "resourceType": "Practitioner",
        "id": "md",
        "name": [{"family": "Referrer", "given": ["Morgan"]}],
        "qualification": [{"code": {"text": "MD"}}],
    }


def coverage(payer: str, sopt: str | None) -> dict:
    cov: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": "cov-1",
        "status": "active",
        "beneficiary": {"reference": "Patient/pat-1"},
        "payor": [{"display": payer}],
    }
    if sopt:
        cov["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": sopt}]}
    return cov


def balance_goal() -> dict:
    return {
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


def strength_goal() -> dict:
    return {
        "resourceType": "Goal",
        "id": "goal-2",
        "lifecycleStatus": "active",
        "subject": {"reference": "Patient/pat-1"},
        "description": {"text": "Quad strength 5/5 for stairs"},
        "target": [{"measure": {"text": "MMT"}, "detailQuantity": {"value": 5}}],
    }


def care_plan(plan_id: str, discipline: str, start: str, end: str, certified: str | None) -> dict:
    """A plan of care written by the PT; certified by the physician (contributor, dated by
    ``created``) unless ``certified`` is "never"."""
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
    return plan


def order(ordered: str, by: str) -> dict:
    """A physician's signed, dated order for therapy."""
    return {
        "resourceType": "ServiceRequest",
        "id": "order-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pat-1"},
        "authoredOn": ordered,
        "requester": {"reference": f"Practitioner/{by}"},
    }


def plan_sent(sent: str, plan_id: str, by: str) -> dict:
    """A Communication sending the plan of care to the physician."""
    return {
        "resourceType": "Communication",
        "id": "sent-1",
        "status": "completed",
        "subject": {"reference": "Patient/pat-1"},
        "about": [{"reference": f"CarePlan/{plan_id}"}],
        "sent": f"{sent}T10:00:00-05:00",
        "recipient": [{"reference": f"Practitioner/{by}"}],
    }


def progress_report(day: str, author: str, loinc: str) -> dict:
    """A progress report (LOINC 11508-9, physical therapy, by default) written on ``day``."""
    return {
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
                    "data": text_data("Progress toward each goal; plan continues."),
                }
            }
        ],
    }


def observation(obs_id: str, encounter: str | None, when: str, value: float, loinc: str) -> dict:
    """An outcome-measure score (the Berg balance scale by default)."""
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
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
    return obs


def document(doc_id: str, encounter: str, text: str, signed: bool) -> dict:
    """The visit note; signed means final with the PT as authenticator."""
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "docStatus": "final" if signed else "preliminary",
        "subject": {"reference": "Patient/pat-1"},
        "context": {"encounter": [{"reference": f"Encounter/{encounter}"}]},
        "content": [{"attachment": {"contentType": "text/plain", "data": text_data(text)}}],
    }
    if signed:
        doc["authenticator"] = {"reference": "Practitioner/pt"}
    return doc


def procedure(
    proc_id: str,
    code: str,
    period: dict | None,
    performers: tuple[str, ...],
    note: str,
    goals: tuple[str, ...],
    encounter: str,
    system: str,
    status: str,
) -> dict:
    """One charted intervention: its code, performers (roles), goals, minutes and note."""
    proc: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": proc_id,
        "status": status,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/pat-1"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "performer": [{"actor": {"reference": f"Practitioner/{p.lower()}"}} for p in performers],
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal",
                "valueReference": {"reference": f"Goal/{g}"},
            }
            for g in goals
        ],
    }
    if period:
        proc["performedPeriod"] = period
    if note:
        proc["note"] = [{"text": note}]
    return proc


def claim_item(
    sequence: int,
    code: str,
    units: int,
    mods: tuple[str, ...],
    amount: float | None,
    encounter: str,
    day: str,
) -> dict:
    """A billed line: CPT code, modifiers, units and charge ($35 a unit unless given)."""
    return {
        "sequence": sequence,
        "productOrService": {"coding": [{"system": CPT, "code": code}]},
        "modifier": [{"coding": [{"code": m}]} for m in mods],
        "quantity": {"value": units},
        "servicedDate": day,
        "encounter": [{"reference": f"Encounter/{encounter}"}],
        "net": {"value": amount if amount is not None else 35.0 * units, "currency": "USD"},
    }


def claim(n: int, items: list[dict]) -> dict:
    """The n-th claim (from 1), of one encounter's lines."""
    return {
        "resourceType": "Claim",
        "id": f"claim-{n}",
        "status": "active",
        "use": "claim",
        "type": {"coding": [{"code": "professional"}]},
        "patient": {"reference": "Patient/pat-1"},
        "created": items[0]["servicedDate"],
        "billablePeriod": {"start": items[0]["servicedDate"]},
        "provider": {"display": "Example Therapy Clinic"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov-1"}}],
        "item": items,
    }


def claim_response(n: int, items: list[dict], created: str) -> dict:
    """The payer's adjudication of claim n: ``items`` as ClaimResponse items (the allowed
    amount of each line, category ``eligible``)."""
    return {
        "resourceType": "ClaimResponse",
        "id": f"claimresponse-{n}",
        "status": "active",
        "use": "claim",
        "type": {"coding": [{"code": "professional"}]},
        "patient": {"reference": "Patient/pat-1"},
        "created": created,
        "insurer": {"display": "Medicare Part B"},
        "request": {"reference": f"Claim/claim-{n}"},
        "outcome": "complete",
        "item": items,
    }
