"""Write the coding-review Task on sign-off: our Task store always, the EHR when it allows it."""

from __future__ import annotations

from dataclasses import dataclass

from plugin.report import to_dict
from plugin.rules.engine import Report
from plugin.tasks.build import INPUT_SYSTEM, review_task, task_snapshot
from plugin.tasks.history import history_entry
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
    after the coders closed the Task reopens it, marked, with the reason in its history, when
    the review changed (findings, units or money); a re-sign of the same review leaves the
    closed Task as it is, with "Signed off again, no change" in its history."""
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
        changes = review_changes(task_snapshot(old), to_dict(report))
        history = list(old.get("note") or [])
        if old.get("status") in CLOSED and not changes:
            # the same review signed again: the coder's decision stands (contract section 5)
            history.append(
                history_entry(
                    "re-signed",
                    "Signed off again, no change",
                    requester,
                    f"The review is the same as when it was closed ({old.get('status')}); "
                    "the Task stays as it is.",
                    who_name=signer,
                )
            )
            task = {**old, "note": history}
            keep: dict = {}
            reason, code = "Signed off again, no change", "unchanged"
        else:
            keep = {k: old[k] for k in ("authoredOn", "owner") if k in old}
        if old.get("status") in CLOSED and changes:
            why = (
                f"Re-signed after the review was closed ({old.get('status')}); "
                f"the review changed ({'; '.join(changes)}), so it is open again"
            )
            history.append(
                history_entry("reopened", "Reopened by a re-sign", requester, why, who_name=signer)
            )
            task["input"] = [*task["input"], reopened_input(why)]
            reason, code = "Task reopened", "reopened"
        elif old.get("status") not in CLOSED:
            what = "Signed off again" + ("" if changes else ", no change")
            note = f"The review changed: {'; '.join(changes)}." if changes else ""
            history.append(history_entry("re-signed", what, requester, note, who_name=signer))
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


def _findings(review: dict) -> dict:
    return {
        (f.get("rule"), f.get("code"), f.get("severity")): round(f.get("dollars_at_risk") or 0, 2)
        for f in review.get("findings") or []
    }


def _units(review: dict) -> dict:
    return {
        s.get("code"): (s.get("billed_units"), s.get("supported_units"))
        for s in review.get("services") or []
    }


def review_changes(old: dict | None, new: dict) -> list[str]:
    """What differs between the review kept at the last sign-off and this one, in words: the
    findings (rule, code, severity), the units (billed and supported by code) or the money
    (at risk, billed). Empty when the review is the same; a Task kept without its review has
    always changed."""
    if old is None:
        return ["the earlier review was not kept"]
    changes = []
    before, after = _findings(old), _findings(new)
    added = sorted({k[0] for k in after.keys() - before.keys()})
    gone = sorted({k[0] for k in before.keys() - after.keys()})
    if added:
        changes.append(f"new findings: {', '.join(added)}")
    if gone:
        changes.append(f"findings gone: {', '.join(gone)}")
    if _units(old) != _units(new):
        changes.append("the units billed or supported")
    money = ("dollars_at_risk", "billed_total")
    moved = [k for k in money if round(old.get(k) or 0, 2) != round(new.get(k) or 0, 2)]
    if moved or (not added and not gone and before != after):
        changes.append("the money at risk or billed")
    return changes


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
