"""The mixed export's care other than therapy, as Synthea writes it: the organisation's
physicians, each patient with coverage and chronic conditions, and ten years of wellness,
ambulatory, urgent, emergency and inpatient encounters with vitals, labs, a note and a claim."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

from plugin.batch.ndjson_writer import NdjsonWriter
from plugin.synthetic.resources import NUCC, text_data

CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SOPT = "https://nahdo.org/sopt"
# (kind, class, SNOMED type, display, mean count per patient over the ten years)
KINDS = (
    ("wellness", "AMB", "162673000", "General examination of patient (procedure)", 10),
    ("ambulatory", "AMB", "390906007", "Follow-up encounter (procedure)", 75),
    ("urgent", "AMB", "702927004", "Urgent care clinic (environment)", 12),
    ("emergency", "EMER", "50849002", "Emergency room admission (procedure)", 6),
    ("inpatient", "IMP", "32485007", "Hospital admission (procedure)", 2),
)
# Non-therapy CPT codes billed per kind (E/M, labs, imaging, ECG).
CLAIM_CODES = {
    "wellness": ("99397", "80053", "85025", "36415", "90686"),
    "ambulatory": ("99214",),
    "urgent": ("99213", "87880"),
    "emergency": ("99284", "71046", "93010", "85025"),
    "inpatient": ("99223", "99232", "99238", "80048"),
}
VITALS = (  # LOINC, display, unit, low, high
    ("8302-2", "Body Height", "cm", 150, 195),
    ("29463-7", "Body Weight", "kg", 50, 120),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 18, 38),
    ("8867-4", "Heart rate", "/min", 55, 110),
    ("9279-1", "Respiratory rate", "/min", 12, 22),
    ("8310-5", "Body temperature", "Cel", 36.1, 38.5),
)
LABS = (
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 160),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.4),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 134, 146),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.4, 5.2),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11, 17),
    ("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 4, 11),
    ("777-3", "Platelets [#/volume] in Blood", "10*3/uL", 150, 400),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.8, 7.5),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140, 260),
)
CHRONIC = (
    ("38341003", "Hypertension"),
    ("15777000", "Prediabetes"),
    ("55822004", "Hyperlipidemia"),
    ("239873007", "Osteoarthritis of knee"),
    ("195967001", "Asthma"),
)
ACUTE = (
    ("44465007", "Sprain of ankle"),
    ("10509002", "Acute bronchitis (disorder)"),
    ("444814009", "Viral sinusitis (disorder)"),
    ("43878008", "Streptococcal sore throat (disorder)"),
    ("283385000", "Laceration of thigh"),
)
PAYERS = (("Medicare", "1"), ("Medicaid", "2"), ("Blue Cross Blue Shield", "5"))
FIRST_DAY, LAST_DAY = date(2016, 1, 1), date(2026, 11, 30)
EASTERN = timezone(timedelta(hours=-5))  # the offset the therapy builders use


def write_patient(
    rng: random.Random, writer: NdjsonWriter, p: int
) -> tuple[str, str, str, list[str]]:
    """Patient number ``p``, their coverage and chronic conditions; returns (patient id, payer,
    source of payment, the conditions' names)."""
    pid = f"mx{p}"
    payer, sopt = rng.choice(PAYERS)
    writer.write(
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": f"Synthetic{p}", "given": ["Pat"]}],
            "gender": rng.choice(("female", "male")),
            "birthDate": f"{rng.randint(1940, 1985)}-{rng.randint(1, 12):02d}-15",
        }
    )
    writer.write(
        {
            "resourceType": "Coverage",
            "id": f"{pid}-cov",
            "status": "active",
            "type": {"coding": [{"system": SOPT, "code": sopt}]},
            "beneficiary": {"reference": f"Patient/{pid}"},
            "payor": [{"display": payer}],
        }
    )
    conditions = []
    for code, name in rng.sample(CHRONIC, rng.randint(1, 3)):
        conditions.append(name)
        writer.write(
            {
                "resourceType": "Condition",
                "id": f"{pid}-c{code}",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "category": [{"coding": [{"code": "problem-list-item"}]}],
                "code": {"coding": [{"system": SNOMED, "code": code}], "text": name},
                "subject": {"reference": f"Patient/{pid}"},
                "onsetDateTime": f"{rng.randint(2005, 2016)}-06-01T00:00:00-05:00",
            }
        )
    return pid, payer, sopt, conditions


def _quantity_obs(oid, pid, eid, when, code, display, unit, value, category) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org"},
    }


def write_physicians(writer: NdjsonWriter) -> list[str]:
    """The organisation's physicians (family and emergency medicine) and its clinic."""
    writer.write(
        {
            "resourceType": "Organization",
            "id": "org-hospital",
            "name": "Example General Hospital",
            "type": [{"coding": [{"code": "prov"}]}],
        }
    )
    ids = []
    for n in range(8):
        taxonomy = "207P00000X" if n % 4 == 3 else "207Q00000X"  # emergency / family medicine
        ids.append(f"md-{n}")
        writer.write(
            {
                "resourceType": "Practitioner",
                "id": f"md-{n}",
                "name": [{"family": f"Physician{n}", "prefix": ["Dr."]}],
                "qualification": [{"code": {"coding": [{"system": NUCC, "code": taxonomy}]}}],
            }
        )
    return ids


def _encounter(rng, writer, pid, eid, kind, cls, code, display, start, end, doctor) -> None:
    writer.write(
        {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": ACT_CODE, "code": cls},
            "type": [{"coding": [{"system": SNOMED, "code": code, "display": display}]}],
            "subject": {"reference": f"Patient/{pid}"},
            "participant": [{"individual": {"reference": f"Practitioner/{doctor}"}}],
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "serviceProvider": {"reference": "Organization/org-hospital"},
        }
    )


def _other_encounter(rng, writer, pid, n, kind, day: date, doctors, conditions) -> None:
    """One non-therapy encounter with its observations, note, claim and extras."""
    _, cls, code, display, _ = next(k for k in KINDS if k[0] == kind)
    eid = f"{pid}-e{n}"
    hour = rng.randint(8, 17)
    minute = rng.choice((0, 15, 30, 45))
    start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=EASTERN)
    length = {
        "wellness": timedelta(minutes=30),
        "ambulatory": timedelta(minutes=20),
        "urgent": timedelta(minutes=45),
        "emergency": timedelta(hours=rng.randint(2, 6)),
        "inpatient": timedelta(days=rng.randint(2, 6)),
    }[kind]
    doctor = doctors[3] if kind == "emergency" else rng.choice(doctors)
    _encounter(rng, writer, pid, eid, kind, cls, code, display, start, start + length, doctor)
    when = start.isoformat()
    obs = 0
    vitals = {"wellness": 6, "ambulatory": 4, "urgent": 4, "emergency": 5, "inpatient": 6}[kind]
    for loinc, name, unit, low, high in VITALS[:vitals]:
        obs += 1
        value = round(rng.uniform(low, high), 1)
        writer.write(
            _quantity_obs(f"{eid}-o{obs}", pid, eid, when, loinc, name, unit, value, "vital-signs")
        )
    obs += 1
    panel = _quantity_obs(
        f"{eid}-o{obs}", pid, eid, when, "85354-9", "Blood pressure panel", "", 0, "vital-signs"
    )
    del panel["valueQuantity"]
    writer.write(  # blood pressure as a panel with components, as Synthea writes it
        {
            **panel,
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                    "valueQuantity": {"value": rng.randint(105, 160), "unit": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                    "valueQuantity": {"value": rng.randint(60, 100), "unit": "mm[Hg]"},
                },
            ],
        }
    )
    labs = {"wellness": 9, "ambulatory": 0, "urgent": 1, "emergency": 5, "inpatient": 9}[kind]
    for loinc, name, unit, low, high in LABS[:labs]:
        obs += 1
        value = round(rng.uniform(low, high), 1)
        writer.write(
            _quantity_obs(f"{eid}-o{obs}", pid, eid, when, loinc, name, unit, value, "laboratory")
        )
    if kind == "wellness":
        obs += 1
        phq = _quantity_obs(
            f"{eid}-o{obs}", pid, eid, when, "55757-9", "PHQ-2 total score", "{score}", 0, "survey"
        )
        phq["valueQuantity"]["value"] = rng.randint(0, 4)
        writer.write(phq)
        writer.write(
            {
                "resourceType": "Immunization",
                "id": f"{eid}-imm",
                "status": "completed",
                "vaccineCode": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}],
                    "text": "Influenza, seasonal, injectable, preservative free",
                },
                "patient": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{eid}"},
                "occurrenceDateTime": when,
            }
        )
        writer.write(
            {
                "resourceType": "Procedure",
                "id": f"{eid}-proc",
                "status": "completed",
                "code": {
                    "coding": [
                        {
                            "system": SNOMED,
                            "code": "710824005",
                            "display": "Assessment of health and social care needs",
                        }
                    ]
                },
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{eid}"},
                "performedPeriod": {"start": when, "end": when},
            }
        )
    if kind == "ambulatory":
        writer.write(
            {
                "resourceType": "MedicationRequest",
                "id": f"{eid}-med",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                            "code": "314076",
                            "display": "lisinopril 10 MG Oral Tablet",
                        }
                    ]
                },  # fmt: skip
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{eid}"},
                "authoredOn": when,
                "requester": {"reference": f"Practitioner/{doctor}"},
            }
        )
    reason = None
    if kind in ("urgent", "emergency", "inpatient"):
        reason = rng.choice(ACUTE)
        writer.write(
            {
                "resourceType": "Condition",
                "id": f"{eid}-cond",
                "clinicalStatus": {"coding": [{"code": "resolved"}]},
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "category": [{"coding": [{"code": "encounter-diagnosis"}]}],
                "code": {"coding": [{"system": SNOMED, "code": reason[0]}], "text": reason[1]},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{eid}"},
                "onsetDateTime": when,
                "abatementDateTime": (start + timedelta(days=14)).isoformat(),
            }
        )
    note = (
        f"{day.isoformat()}\n\n# Chief Complaint\n{reason[1] if reason else 'No complaints.'}\n\n"
        f"# History of Present Illness\nPatient is seen for a {kind} encounter. "
        f"Active problems: {', '.join(conditions) or 'none'}.\n\n# Plan\nContinue current care."
    )
    writer.write(
        {
            "resourceType": "DocumentReference",
            "id": f"{eid}-note",
            "status": "current",
            "type": {"coding": [{"system": LOINC, "code": "34117-2"}]},
            "category": [{"coding": [{"code": "clinical-note"}]}],
            "subject": {"reference": f"Patient/{pid}"},
            "date": when,
            "author": [{"reference": f"Practitioner/{doctor}"}],
            "content": [{"attachment": {"contentType": "text/plain", "data": text_data(note)}}],
            "context": {
                "encounter": [{"reference": f"Encounter/{eid}"}],
                "period": {"start": when},
            },
        }
    )
    codes = CLAIM_CODES[kind]
    writer.write(
        {
            "resourceType": "Claim",
            "id": f"{eid}-claim",
            "status": "active",
            "use": "claim",
            "type": {"coding": [{"code": "institutional" if kind == "inpatient" else "professional"}]},  # noqa: E501
            "patient": {"reference": f"Patient/{pid}"},
            "billablePeriod": {"start": when, "end": (start + length).isoformat()},
            "created": when,
            "provider": {"reference": "Organization/org-hospital"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [
                {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{pid}-cov"}}
            ],
            "item": [
                {
                    "sequence": s + 1,
                    "productOrService": {"coding": [{"system": CPT, "code": c}]},
                    "servicedDate": day.isoformat(),
                    "encounter": [{"reference": f"Encounter/{eid}"}],
                    "quantity": {"value": 1},
                    "net": {"value": round(rng.uniform(20, 400), 2), "currency": "USD"},
                }
                for s, c in enumerate(codes)
            ],
        }
    )  # fmt: skip


def write_other_encounters(
    rng: random.Random,
    writer: NdjsonWriter,
    pid: str,
    doctors: list[str],
    conditions: list[str],
    therapy_days: set[str],
) -> int:
    """Ten years of the patient's other care, on days without a therapy visit; returns how
    many encounters were written."""
    span = (LAST_DAY - FIRST_DAY).days
    n = 0
    for kind, _, _, _, mean in KINDS:
        count = max(0, round(rng.gauss(mean, mean / 4)))
        for _ in range(count):
            day = FIRST_DAY + timedelta(days=rng.randrange(span))
            while day.isoformat() in therapy_days:
                day += timedelta(days=1)
            n += 1
            _other_encounter(rng, writer, pid, n, kind, day, doctors, conditions)
    return n
