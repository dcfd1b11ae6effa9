"""Write the coding-review Task on sign-off: our Task store always, the EHR when it allows it."""

from __future__ import annotations

from dataclasses import dataclass

from plugin.rules.engine import Report
from plugin.tasks.build import review_task
from plugin.tasks.outbox import Outbox
from plugin.tasks.store import Stored, TaskStore


@dataclass(frozen=True)
class WriteResult:
    stored: Stored | None
    created: bool
    queued_for_ehr: bool
    reason: str


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
) -> WriteResult:
    """One Task per visit: created the first time, updated (If-Match) on a re-sign."""
    if report.verdict == "supported" and not report.findings and not write_clean:
        return WriteResult(None, False, False, "clean visit: no coding review needed")
    task = review_task(report, issuer=issuer, owner=owner, requester=requester)
    stored, created = store.create(task, if_none_exist=True)
    if not created:
        keep = {k: stored.task[k] for k in ("authoredOn",) if k in stored.task}
        stored = store.update(stored.task["id"], {**task, **keep}, if_match=stored.version)
    queued = False
    if outbox is not None and ehr_accepts_tasks:
        outbox.enqueue(issuer, task["identifier"][0]["value"], task)
        queued = True
    return WriteResult(stored, created, queued, "Task created" if created else "Task updated")
