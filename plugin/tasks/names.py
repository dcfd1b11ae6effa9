"""The people a review Task names, read once from the visit's Bundle at sign-off so the queue
shows them without asking the EHR again: the patient's name and MRN, the therapist's name."""

from __future__ import annotations

from dataclasses import dataclass

MRN_CODES = {"MR", "MRN"}  # HL7 v2-0203 identifier type "MR" (some EHRs send "MRN")


@dataclass(frozen=True)
class People:
    patient_name: str | None = None
    patient_mrn: str | None = None
    therapist_name: str | None = None


def human_name(resource: dict | None) -> str | None:
    """The resource's usual (else first) name as "Given Family", with suffixes; None if none."""
    names = [n for n in (resource or {}).get("name") or [] if isinstance(n, dict)]
    if not names:
        return None
    name = next((n for n in names if n.get("use") == "usual"), None) or next(
        (n for n in names if n.get("use") == "official"), names[0]
    )
    text = str(name.get("text") or "").strip()
    if not text:
        given = [str(g) for g in name.get("given") or [] if g]
        parts = [*given, str(name.get("family") or "")]
        text = " ".join(p for p in parts if p).strip()
        suffix = ", ".join(str(s) for s in name.get("suffix") or [] if s)
        if text and suffix:
            text = f"{text}, {suffix}"
    return text[:200] or None


def mrn(patient: dict | None) -> str | None:
    """The medical record number: the identifier typed MR, else none (never another id)."""
    for ident in (patient or {}).get("identifier") or []:
        if not isinstance(ident, dict) or not ident.get("value"):
            continue
        codes = {
            str(c.get("code", "")).upper()
            for c in ((ident.get("type") or {}).get("coding") or [])
            if isinstance(c, dict)
        }
        text = str((ident.get("type") or {}).get("text") or "").upper()
        if codes & MRN_CODES or text in MRN_CODES:
            return str(ident["value"])[:64]
    return None


def people(bundle: dict, patient: str | None, therapist: str | None) -> People:
    """Names of the patient and the therapist (``Type/id`` references) found in the Bundle."""
    by_ref = {}
    for entry in bundle.get("entry") or []:
        resource = (entry or {}).get("resource") or {}
        if resource.get("resourceType") and resource.get("id"):
            by_ref[f"{resource['resourceType']}/{resource['id']}"] = resource
    pat = by_ref.get(patient or "")
    therapist_resource = by_ref.get(therapist or "")
    therapist_name = human_name(therapist_resource)
    if therapist_resource and therapist_resource.get("resourceType") == "PractitionerRole":
        practitioner = therapist_resource.get("practitioner") or {}
        therapist_name = human_name(by_ref.get(practitioner.get("reference") or "")) or (
            str(practitioner.get("display") or "")[:200] or None
        )
    return People(human_name(pat), mrn(pat), therapist_name)
