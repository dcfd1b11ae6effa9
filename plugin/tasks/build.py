"""Build the coding-review FHIR Task for one reviewed visit (validated with fhir.resources R4B).

One Task per visit: its identifier is derived from the EHR's issuer and the Encounter, so
re-signing the same visit updates that Task (conditional create, then If-Match update) instead
of adding another.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import orjson
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from plugin.domain import Severity
from plugin.errors import PluginError
from plugin.fhir.validation import first_problem
from plugin.report import to_dict
from plugin.rules.engine import Report
from plugin.tasks.names import People

SYSTEM = "https://unitguard.example.org/fhir"
TASK_CODE_SYSTEM = f"{SYSTEM}/CodeSystem/task-code"
TASK_CODE = "coding-review"
RULE_SYSTEM = f"{SYSTEM}/CodeSystem/rule"
INPUT_SYSTEM = f"{SYSTEM}/CodeSystem/task-input"
IDENTIFIER_SYSTEM = f"{SYSTEM}/task-id"
ACTION_EXTENSION = f"{SYSTEM}/StructureDefinition/task-action"
PRIORITY = {Severity.ERROR: "asap", Severity.WARNING: "urgent", Severity.INFO: "routine"}


class TaskBuildError(PluginError):
    """The Task built from a review does not validate as FHIR R4 (a bug, reported clearly)."""


def task_identifier(issuer: str, encounter: str) -> str:
    """A stable, opaque identifier value for the one review Task of a visit."""
    return hashlib.sha256(f"{issuer}|{encounter}".encode()).hexdigest()[:32]


def _worst(report: Report) -> Severity | None:
    return min((f.severity for f in report.findings), key=lambda s: s.rank, default=None)


def task_input(task: dict, code: str) -> object:
    """The value of the Task input of our input type ``code`` (None when absent)."""
    for item in task.get("input") or []:
        for coding in (item.get("type") or {}).get("coding") or []:
            if coding.get("system") == INPUT_SYSTEM and coding.get("code") == code:
                for key, value in item.items():
                    if key.startswith("value"):
                        return value.get("reference") if key == "valueReference" else value
    return None


def task_snapshot(task: dict) -> dict | None:
    """The review as it stood at sign-off (the report JSON the Task carries), or None."""
    attachment = task_input(task, "review")
    if not isinstance(attachment, dict) or not attachment.get("data"):
        return None
    try:
        return orjson.loads(base64.b64decode(attachment["data"]))
    except ValueError:
        return None


def task_findings(task: dict) -> list[dict]:
    """A review Task's findings as its inputs carry them, in input order: rule id, severity and
    code (each input's text is "<severity> <code>")."""
    out = []
    for item in task.get("input") or []:
        for coding in (item.get("type") or {}).get("coding") or []:
            if coding.get("system") == RULE_SYSTEM:
                words = str((item.get("type") or {}).get("text") or "").split()
                out.append(
                    {
                        "rule": coding.get("code", ""),
                        "severity": words[0] if words else "",
                        "code": words[1] if len(words) > 1 else None,
                    }
                )
    return out


def task_rules(task: dict) -> list[str]:
    """The rule ids of a review Task's findings, in input order."""
    return [
        coding.get("code", "")
        for item in task.get("input") or []
        for coding in (item.get("type") or {}).get("coding") or []
        if coding.get("system") == RULE_SYSTEM
    ]


def summary(report: Report) -> str:
    """One line: the verdict, how many findings of each severity, the codes, dollars at risk."""
    counts = {sev: sum(1 for f in report.findings if f.severity is sev) for sev in Severity}
    codes = "/".join(s.code for s in report.services) or "no services"
    return (
        f"unitguard {report.verdict}: {counts[Severity.ERROR]} error(s), "
        f"{counts[Severity.WARNING]} warning(s) on {codes}; "
        f"${report.dollars_at_risk:,.2f} at risk"
    )


def review_task(
    report: Report,
    *,
    issuer: str,
    owner: dict | None = None,
    requester: str | None = None,
    now: datetime | None = None,
    people: People | None = None,
) -> dict:
    """The Task resource (as a dict) for a reviewed visit; TaskBuildError if it is not valid."""
    visit = report.visit
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    focus = next((ln.ref.split("#")[0] for ln in visit.billed or () if ln.ref), None)
    worst = _worst(report)
    inputs: list[dict] = []
    for finding in report.findings:
        inputs.append(
            {
                "type": {
                    "coding": [{"system": RULE_SYSTEM, "code": finding.rule}],
                    "text": f"{finding.severity.value} {finding.code or ''}".strip(),
                },
                "valueString": f"{finding.message}. Fix: {finding.fix} ({finding.citation})",
            }
        )
    inputs.append(
        {
            "type": {"coding": [{"system": INPUT_SYSTEM, "code": "dollars-at-risk"}]},
            "valueMoney": {"value": round(report.dollars_at_risk, 2), "currency": "USD"},
        }
    )
    inputs.append(
        {
            "type": {"coding": [{"system": INPUT_SYSTEM, "code": "verdict"}]},
            "valueString": report.verdict,
        }
    )
    therapist = next((p.ref for s in visit.services for p in s.performers), None)
    if therapist:
        inputs.append(
            {
                "type": {"coding": [{"system": INPUT_SYSTEM, "code": "therapist"}]},
                "valueReference": {"reference": therapist},
            }
        )
    people = people or People()
    for code, value in (
        ("patient-name", people.patient_name),
        ("patient-mrn", people.patient_mrn),
        ("therapist-name", people.therapist_name),
    ):
        if value:
            inputs.append(
                {
                    "type": {"coding": [{"system": INPUT_SYSTEM, "code": code}]},
                    "valueString": value,
                }
            )
    inputs.append(
        {
            "type": {"coding": [{"system": INPUT_SYSTEM, "code": "ehr"}]},
            "valueUri": issuer,
        }
    )
    inputs.append(
        {
            "type": {"coding": [{"system": INPUT_SYSTEM, "code": "review"}]},
            "valueAttachment": {
                "contentType": "application/json",
                "title": "The review at sign-off",
                "data": base64.b64encode(orjson.dumps(to_dict(report))).decode(),
            },
        }
    )
    if visit.payer:
        inputs.append(
            {
                "type": {"coding": [{"system": INPUT_SYSTEM, "code": "payer"}]},
                "valueString": visit.payer,
            }
        )
    if visit.day:
        inputs.append(
            {
                "type": {"coding": [{"system": INPUT_SYSTEM, "code": "date-of-service"}]},
                "valueDate": visit.day.isoformat(),
            }
        )
    task: dict = {
        "resourceType": "Task",
        "identifier": [
            {"system": IDENTIFIER_SYSTEM, "value": task_identifier(issuer, visit.encounter)}
        ],
        "status": "requested",
        "intent": "order",
        "priority": PRIORITY[worst] if worst else "routine",
        "code": {
            "coding": [
                {
                    "system": TASK_CODE_SYSTEM,
                    "code": TASK_CODE,
                    "display": "unitguard coding review",
                }
            ]
        },
        "description": summary(report),
        "focus": {"reference": focus or visit.encounter},
        "encounter": {"reference": visit.encounter},
        "authoredOn": stamp,
        "lastModified": stamp,
        "input": inputs,
    }
    if visit.patient:
        task["for"] = {"reference": visit.patient}
    if owner:
        task["owner"] = owner
    if requester:
        task["requester"] = {"reference": requester}
    try:
        Task.model_validate(task)
    except ValidationError as exc:
        raise TaskBuildError(f"review Task is not valid FHIR R4 at {first_problem(exc)}") from exc
    return task
