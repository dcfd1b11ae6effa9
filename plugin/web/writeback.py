"""Write the coding-review Task on sign-off: our Task store always, the EHR when it allows it."""

from __future__ import annotations

from dataclasses import dataclass

from plugin.rules.engine import Report
from plugin.tasks.build import INPUT_SYSTEM, history_entry, review_task
from plugin.tasks.names import People
from plugin.tasks.outbox import Outbox
from plugin.tasks.store import Stored, TaskStore


@dataclass(frozen=True)
class WriteResult:
    stored: Stored | None
    created: bool
    queued_for_ehr: bool
    reason: str
    code: str = ""  # what the review page says, by plugin.web.notices.SIGN_OFF


def sign_off(
    report: Report,
    *,
    store: TaskStore,
    issuer: str,
    owner: dict,
    requester: str | None,
    write_clean: bool,
    outbox: Outbox | None = None,
    ehr_accepts_tasks: bool = False,
    people: People | None = None,
    signer: str | None = None,
) -> WriteResult:
    """One Task per visit: created the first time, updated (If-Match) on a re-sign. A re-sign
    after the coders closed the Task reopens it, marked, with the reason in its history."""
    if report.verdict == "supported" and not report.findings and not write_clean:
        return WriteResult(None, False, False, "clean visit: no coding review needed", "clean")
    task = review_task(report, issuer=issuer, owner=owner, requester=requester, people=people)
    task["note"] = [
        history_entry("signed-off", "Signed off by the therapist", requester, who_name=signer)
    ]
    stored, created = store.create(task, if_none_exist=True)
    reason = "Task created" if created else "Task updated"
    code = "created" if created else "updated"
    if not created:
        old = stored.task
        keep = {k: old[k] for k in ("authoredOn", "owner") if k in old}
        history = list(old.get("note") or [])
        if old.get("status") in CLOSED:
            why = (
                f"Re-signed after the review was closed ({old.get('status')}); "
                "the visit changed, so it is open again"
            )
            history.append(
                history_entry("reopened", "Reopened by a re-sign", requester, why, who_name=signer)
            )
            task["input"] = [*task["input"], reopened_input(why)]
            reason, code = "Task reopened", "reopened"
        else:
            history.append(
                history_entry("re-signed", "Signed off again", requester, who_name=signer)
            )
            if any(_is_reopened(i) for i in old.get("input") or []):
                task["input"] = [
                    *task["input"],
                    *(i for i in old["input"] if _is_reopened(i)),
                ]
        task["note"] = history
        stored = store.update(stored.task["id"], {**task, **keep}, if_match=stored.version)
    queued = False
    if outbox is not None and ehr_accepts_tasks:
        outbox.enqueue(issuer, task["identifier"][0]["value"], task)
        queued = True
    return WriteResult(stored, created, queued, reason, code)


CLOSED = ("completed", "rejected", "cancelled")


def reopened_input(reason: str) -> dict:
    """The Task input that marks a reopened review, with the reason."""
    return {
        "type": {"coding": [{"system": INPUT_SYSTEM, "code": "reopened"}]},
        "valueString": reason,
    }


def _is_reopened(item: dict) -> bool:
    return any(
        c.get("system") == INPUT_SYSTEM and c.get("code") == "reopened"
        for c in (item.get("type") or {}).get("coding") or []
    )
