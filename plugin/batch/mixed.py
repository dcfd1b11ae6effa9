"""A whole organisation's synthetic export, shaped like Synthea's FHIR R4 Bulk output: what an
audit meets in practice, where therapy visits are a few per cent of the encounters.

Each patient has about ten years of care: yearly wellness visits with vitals, labs, a PHQ-2 and
a flu shot; ambulatory follow-ups with vitals and a prescription; urgent-care and emergency
visits with an acute Condition and a few labs; the odd inpatient stay; every encounter with a
Synthea-style clinical note (DocumentReference, text/plain) and a Claim whose CPT codes are not
therapy codes (E/M, labs, imaging). About two patients in five also have an outpatient therapy
episode in 2026, weekly visits built with ``plugin.synthetic`` (PT: CMS worked example 1; OT:
97530 + 97535 with GO) under one certified plan of care with a progress report on the tenth
treatment day, scheduled into their team's hourly slots as ``plugin.batch.synth`` does,
so no two patients share a therapist's minutes, each session's note written anew. Every therapy
visit is clean: an audit should find nothing.

therapy.csv lists the therapy encounters (what an audit should review); the rest should be
skipped. No real patient data; reproducible from the seed.
"""

from __future__ import annotations

import base64
import csv
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson

from plugin.batch.synth import SLOTS_PER_DAY, assign_team, shift_times
from plugin.synthetic.ids import unique_ids
from plugin.synthetic.resources import NUCC
from plugin.synthetic.visit import VisitBuilder, clean_visit

CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SOPT = "https://nahdo.org/sopt"
TYPES = (
    "Patient",
    "Encounter",
    "Practitioner",
    "Organization",
    "Coverage",
    "Condition",
    "Observation",
    "Immunization",
    "MedicationRequest",
    "Procedure",
    "DocumentReference",
    "Goal",
    "CarePlan",
    "Claim",
    "ClaimResponse",
)
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
VISITS_PER_TEAM = 1500
THERAPY_SHARE = 0.4  # patients with an outpatient therapy episode in 2026
FIRST_DAY, LAST_DAY = date(2016, 1, 1), date(2026, 11, 30)
EASTERN = timezone(timedelta(hours=-5))  # the offset the therapy builders use


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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


class _Writer:
    def __init__(self, out: Path, binary_notes: bool) -> None:
        types = (*TYPES, "Binary") if binary_notes else TYPES
        self.files = {t: (out / f"{t}.ndjson").open("wb") for t in types}
        self.counts = dict.fromkeys(types, 0)
        self.binary_notes = binary_notes
        self.out = out

    def write(self, resource: dict, line: bytes | None = None) -> None:
        """Write a resource (or its already serialised ``line``)."""
        rtype = resource["resourceType"]
        if rtype not in self.files:  # a type the builders gained since
            self.files[rtype] = (self.out / f"{rtype}.ndjson").open("wb")
            self.counts[rtype] = 0
        if rtype == "DocumentReference" and self.binary_notes:
            resource, line = self._to_binary(orjson.loads(line) if line else resource), None
        self.files[rtype].write((line or orjson.dumps(resource)) + b"\n")
        self.counts[rtype] += 1

    def _to_binary(self, document: dict) -> dict:
        """Epic's way: the note's text in a Binary that the attachment's url points at, its
        securityContext naming the DocumentReference (no patient on the Binary's line)."""
        binary_id = f"{document['id']}-text"
        attachment = document["content"][0]["attachment"]
        binary = {
            "resourceType": "Binary",
            "id": binary_id,
            "contentType": attachment["contentType"],
            "securityContext": {"reference": f"DocumentReference/{document['id']}"},
            "data": attachment.pop("data"),
        }
        attachment["url"] = f"Binary/{binary_id}"
        self.write(binary)
        return document

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def _practitioners(writer: _Writer) -> list[str]:
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
            "content": [{"attachment": {"contentType": "text/plain", "data": _b64(note)}}],
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


# A therapist writes each session's note anew: three sentences, one from each list, never the
# same three twice in an episode (a note repeated word for word is a cloned-note finding).
DEFICITS = {
    "PT": (
        "Pt with impaired single-leg balance and decreased proprioception R ankle after TKA.",
        "Pt with postural instability and increased sway after a fall at home.",
        "Pt with poor postural control and fall risk after a stroke.",
        "Pt with gait instability and decreased proprioception from peripheral neuropathy.",
    ),
    "OT": (
        "Pt with impaired standing balance limiting kitchen and dressing tasks after a stroke.",
        "Pt with decreased coordination of the R hand and fall risk during self-care.",
    ),
}
INTERVENTIONS = {
    "PT": (
        "Perturbation training on foam with min verbal cues for hip strategy.",
        "Tandem and single-leg stance on a rocker board with tactile cues and CGA.",
        "Stepping strategy drills to lateral perturbations with mod tactile cues.",
        "PNF D2 patterns with manual facilitation for trunk control.",
        "Proprioceptive training on a BOSU with eyes closed and verbal cues.",
        "Weight shifting in standing with visual feedback for postural control.",
        "Dynamic balance on an airex pad with head turns and tactile cues.",
        "Reactive balance training with a ball toss on foam and manual guidance.",
    ),
    "OT": (
        "Kitchen task at counter height, retrieving items from an upper cabinet with cues.",
        "Lower body dressing with reacher and sock aid, verbal cues for sequencing.",
        "Tub transfer training with bench and grab bar, verbal cues for hand placement.",
        "Meal preparation in standing for 12 minutes with cues for pacing.",
        "Laundry task loading and unloading the washer with a reacher and tactile cues.",
        "Grooming at the sink in standing, cues for energy conservation.",
        "Bed making with pacing strategies and verbal cues.",
        "Toilet transfer with raised seat and CGA, cues for safety.",
    ),
}
RESPONSES = (
    "Pt tolerated the session well with decreased sway.",
    "Pt needed two rest breaks and improved by the end.",
    "Pt reported mild fatigue and kept the task going.",
    "Pt progressed from min A to CGA during the session.",
    "Pt demonstrated better posture than last session.",
    "Pt increased hold time by 20 seconds over last week.",
    "Pt demonstrated better anticipatory control on the second set.",
    "Pt required fewer cues by the end of the session.",
)
PLANS = (
    "Plan: progress to dual-task activities.",
    "Plan: add uneven surfaces next visit.",
    "Plan: increase speed and shorten rests.",
    "Plan: begin community-level tasks.",
    "Plan: reduce cues and upper limb support.",
    "Plan: add reaching outside the base of support.",
    "Plan: progress to single-leg tasks on foam.",
    "Plan: retest the outcome measure in two weeks.",
)


def _session_notes(rng: random.Random, visits: int, discipline: str) -> list[str]:
    combos = [
        (a, b, c)
        for a in INTERVENTIONS[discipline]
        for b in RESPONSES
        for c in PLANS
    ]  # fmt: skip
    deficit = rng.choice(DEFICITS[discipline])
    return [" ".join((deficit, *combo)) for combo in rng.sample(combos, visits)]


def _ot_visit(day: str, payer: str, sopt: str) -> VisitBuilder:
    """An OT visit: 97530 30 min + 97535 23 min (53 timed minutes, 4 units), billed 2 + 2 GO."""
    b = VisitBuilder(day=day, payer=payer, sopt=sopt, plan_of_care=False)
    b.proc(
        "97530",
        "09:00",
        "09:30",
        performer="OT",
        note="Therapeutic activities: standing tolerance at counter for kitchen tasks with CGA.",
    )
    b.proc(
        "97535",
        "09:30",
        "09:53",
        performer="OT",
        goals=("goal-1",),
        note="Self-care training: lower body dressing with reacher and sock aid, min A.",
    )
    b.line("97530", 2, mods=("GO",))
    b.line("97535", 2, mods=("GO",))
    return b


def generate_mixed(
    out: Path, patients: int = 60, seed: int = 1, binary_notes: bool = False
) -> dict[str, int]:
    """Write the export (one NDJSON file per type) and therapy.csv; returns counts.
    ``binary_notes``: every note's text in Binary.ndjson, as a Bulk export of Epic gives it."""
    # S311/B311: synthetic test data must be reproducible from its seed; nothing secret here.
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out, binary_notes)
    therapy_rows: list[tuple[str, str]] = []
    span = (LAST_DAY - FIRST_DAY).days
    episodes = [rng.random() < THERAPY_SHARE for _ in range(patients)]
    expected_visits = sum(episodes) * 9
    teams = max(2, -(-expected_visits // VISITS_PER_TEAM))
    booked: dict[tuple[int, str], int] = {}
    written: set[str] = set()
    encounters = 0
    try:
        doctors = _practitioners(writer)
        for p in range(patients):
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
            therapy_days: set[str] = set()
            if episodes[p]:
                ot = rng.random() < 0.3
                # 6 to 12 weekly visits inside 2026: one certified plan of care (90 days at
                # most), a progress report on the tenth treatment day, and under the year's
                # KX threshold, so no visit needs the KX modifier
                first = date(2026, rng.randint(1, 9), rng.randint(1, 28))
                visits = rng.randint(6, 12)
                notes = _session_notes(rng, visits, "OT" if ot else "PT")
                for v in range(visits):
                    day = first + timedelta(days=7 * v)
                    while True:  # a free hourly slot of one team (no shared therapist minutes)
                        team = rng.randrange(teams)
                        slot = booked.get((team, day.isoformat()), 0)
                        if slot < SLOTS_PER_DAY:
                            booked[(team, day.isoformat())] = slot + 1
                            break
                        day += timedelta(days=1)
                    iso = day.isoformat()
                    therapy_days.add(iso)
                    builder = (
                        _ot_visit(iso, payer, sopt)
                        if ot
                        else clean_visit(day=iso, payer=payer, sopt=sopt, plan_of_care=False)
                    )
                    if v == 0:
                        start = first.isoformat()
                        end = (first + timedelta(days=89)).isoformat()
                        discipline = "Occupational therapy" if ot else "Physical therapy"
                        builder.plan_of_care(start, end, start, discipline=discipline)
                    if v == 9:
                        author, loinc = ("ot", "11507-1") if ot else ("pt", "11508-9")
                        builder.progress_report(iso, author=author, loinc=loinc)
                    for e in builder.entries:  # the balance score improves over the episode
                        r = e["resource"]
                        if r["resourceType"] == "Procedure" and r["code"]["coding"][0]["code"] in (
                            "97112",
                            "97530",
                        ):
                            r["note"] = [{"text": notes[v]}]
                        if r["resourceType"] == "DocumentReference":
                            signer = "OT" if ot else "PT"
                            text = f"Treatment note, visit {v + 1}. {notes[v]} Signed, {signer}."
                            r["content"][0]["attachment"]["data"] = _b64(text)
                        if r["resourceType"] == "Observation" and "encounter" in r:
                            r["valueQuantity"]["value"] = min(56, 40 + v)
                        if r["resourceType"] == "Observation" and "encounter" not in r:
                            earlier = (day - timedelta(days=14)).isoformat()
                            r["effectiveDateTime"] = f"{earlier}T09:05:00-05:00"
                    prefix = f"{pid}-t{v}"
                    text = orjson.dumps(unique_ids(builder.bundle(), prefix))
                    text = text.replace(f"{prefix}-pat-1".encode(), pid.encode())
                    text = text.replace(f"{prefix}-cov-1".encode(), f"{pid}-cov".encode())
                    text = text.replace(f"{prefix}-goal-".encode(), f"{pid}-goal-".encode())
                    text = text.replace(f"{prefix}-poc-".encode(), f"{pid}-poc-".encode())
                    for entry in orjson.loads(text)["entry"]:
                        r = entry["resource"]
                        if r["resourceType"] in ("Patient", "Coverage"):
                            continue
                        if r["resourceType"] == "Goal" and v:
                            continue  # the episode's goals, written with its first visit
                        if r["resourceType"] == "Observation" and "encounter" not in r and v:
                            continue  # the baseline score, once
                        if r["resourceType"] == "Practitioner":
                            r = {**r, "id": f"{r['id']}-t{team}"}
                            if r["id"] in written:
                                continue  # each team's therapists (and referrer) once
                            written.add(r["id"])
                        writer.write(r, assign_team(orjson.dumps(shift_times(r, slot - 2)), team))
                    therapy_rows.append((f"Encounter/{prefix}-enc-1", "OT" if ot else "PT"))
                    encounters += 1
            n = 0
            for kind, _, _, _, mean in KINDS:
                count = max(0, round(rng.gauss(mean, mean / 4)))
                for _ in range(count):
                    day = FIRST_DAY + timedelta(days=rng.randrange(span))
                    while day.isoformat() in therapy_days:
                        day += timedelta(days=1)
                    n += 1
                    _other_encounter(rng, writer, pid, n, kind, day, doctors, conditions)
                    encounters += 1
    finally:
        writer.close()
    with (out / "therapy.csv").open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(["encounter", "discipline"])
        rows.writerows(therapy_rows)
    return {
        "patients": patients,
        "encounters": encounters,
        "therapy_visits": len(therapy_rows),
        "resources": sum(writer.counts.values()),
    }
