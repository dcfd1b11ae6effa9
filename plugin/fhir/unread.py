"""What could not be read, carried from the fetch to the review as data (contract §2, "Unread is
not absent").

The fetch (plugin/ehr) writes each thing it could not read as an OperationOutcome issue in the
Bundle (search mode ``outcome``), as every reading note is, plus the extension ``UNREAD``: the
resource type, which part of it, and the EHR. A Bundle written so reviews the same from a file
as over HTTP. The review keeps them on the Index (``Index.unread``) and gives the Visit those
that concern it (``visit_unread``); the rules then decide nothing from their absence.
"""

from __future__ import annotations

from plugin.domain import Unread

UNREAD = "https://unitguard.example.org/fhir/StructureDefinition/unread"
# How the reading notes end; not part of the reason a finding gives.
_TAILS = ("; the review goes on without those resources", "; the review goes on without")


def unread_issue(resource: str, why: str, part: str = "", ehr: str = "") -> dict:
    """The OperationOutcome issue for something not read: a warning whose diagnostics is the
    reading note, with the extension naming what it was."""
    fields = [{"url": "resource", "valueCode": resource}]
    if part:
        fields.append({"url": "part", "valueString": part})
    if ehr:
        fields.append({"url": "ehr", "valueString": ehr})
    return {
        "extension": [{"url": UNREAD, "extension": fields}],
        "severity": "warning",
        "code": "incomplete",
        "diagnostics": why,
    }


def with_ehr(outcome: dict, ehr: str) -> dict:
    """The outcome (one the fetch wrote) with the EHR named in each of its unread issues that
    names none."""
    if not ehr:
        return outcome
    for issue in outcome.get("issue") or []:
        for ext in issue.get("extension") or []:
            fields = ext.get("extension")
            if ext.get("url") == UNREAD and not any(f.get("url") == "ehr" for f in fields):
                fields.append({"url": "ehr", "valueString": ehr})
    return outcome


def unread_of(outcome: dict) -> list[Unread]:
    """The Unread items an OperationOutcome carries (none for an ordinary server note)."""
    found = []
    issues = outcome.get("issue")
    for issue in issues if isinstance(issues, list) else ():
        if not isinstance(issue, dict):
            continue
        extensions = issue.get("extension")
        for ext in extensions if isinstance(extensions, list) else ():
            if not isinstance(ext, dict) or ext.get("url") != UNREAD:
                continue
            fields = {
                f.get("url"): f.get("valueCode") or f.get("valueString")
                for f in ext.get("extension") or []
                if isinstance(f, dict)
            }
            resource = fields.get("resource")
            if not isinstance(resource, str) or not resource:
                continue
            why = issue.get("diagnostics")
            why = why if isinstance(why, str) else f"{resource} could not be read"
            for tail in _TAILS:
                why = why.split(tail)[0]
            found.append(Unread(resource, why, _text(fields.get("part")), _text(fields.get("ehr"))))
    return found


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def visit_unread(
    unread: list[Unread],
    documents: list[str],
    performers: set[str],
    payer_known: bool,
    payer_missing: str,
) -> tuple[Unread, ...]:
    """What of the unread concerns the reviewed visit: a note's text only when it is this
    visit's note (``documents``: its DocumentReference keys; an earlier visit's note decides
    nothing), a practitioner only when one of its services names them (``performers``), the
    payer only when it stayed unknown (``payer_missing``: a Coverage named but not in the record
    read); everything else as it is. Each once, in the order read."""
    found: dict[Unread, None] = {}
    for item in unread:
        if item.resource == "Binary" and item.part not in documents:
            continue
        if item.resource in ("Practitioner", "PractitionerRole") and item.part not in performers:
            continue
        if item.resource == "Coverage" and payer_known:
            continue
        found[item] = None
    if payer_missing and not payer_known and not any(u.resource == "Coverage" for u in found):
        found[Unread("Coverage", payer_missing)] = None
    return tuple(found)
