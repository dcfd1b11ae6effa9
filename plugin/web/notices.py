"""The short notices a page shows after an action, chosen by the app, never by the URL.

A redirect after an action carries a code (``?status=created``, ``?message=complete-corrected``)
and the page shows the app's own text for it; an unknown code shows nothing. The text itself
never travels in the URL: anyone can write a link with ``?status=Your account is locked, call
...`` and the page would have said it in the app's voice (second security review).
"""

from __future__ import annotations

from plugin.tasks.history import task_history
from plugin.web.task_actions import ACTIONS

__all__ = ["SIGN_OFF", "saved_notice", "sign_off_notice", "task_code", "task_notice"]

# sign-off result code (plugin.web.writeback.WriteResult.code) -> what the review page says
SIGN_OFF = {
    "created": "Task created",
    "updated": "Task updated",
    "reopened": "Task reopened",
    "unchanged": "Signed off again, no change",
    "clean": "clean visit: no coding review needed",
}


def sign_off_notice(code: object) -> str | None:
    return SIGN_OFF.get(code) if isinstance(code, str) else None


def task_notice(code: object, labels: dict[str, str]) -> str | None:
    """What the Task page says after the action ``code`` (``labels``: action -> its label)."""
    if isinstance(code, str) and code in labels:
        return f"Saved: {labels[code]}"
    return None


def task_code(code: object) -> str | None:
    """An action's code to carry on in a URL (after "next"), or None for anything else."""
    return code if isinstance(code, str) and code in ACTIONS else None


def saved_notice(code: object, task: dict | None = None) -> str | None:
    """What a page says after the Task action ``code``: the app's words for it, or, given the
    Task the action was saved on, what its history recorded for it ("Completed: corrected
    (billed 97112 x 1)"): read from the store, never from the URL."""
    if task is not None and isinstance(code, str) and code in ACTIONS:
        for entry in reversed(task_history(task)):
            if entry["action"] == code:
                return f"Saved: {entry['what']}"
    return task_notice(code, {action: label for action, (label, _, _) in ACTIONS.items()})
