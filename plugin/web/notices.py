"""The short notices a page shows after an action, chosen by the app, never by the URL.

A redirect after an action carries a code (``?status=created``, ``?message=complete-corrected``)
and the page shows the app's own text for it; an unknown code shows nothing. The text itself
never travels in the URL: anyone can write a link with ``?status=Your account is locked, call
...`` and the page would have said it in the app's voice (second security review).
"""

from __future__ import annotations

__all__ = ["SIGN_OFF", "sign_off_notice", "task_notice"]

# sign-off result code (plugin.web.writeback.WriteResult.code) -> what the review page says
SIGN_OFF = {
    "created": "Task created",
    "updated": "Task updated",
    "reopened": "Task reopened",
    "clean": "clean visit: no coding review needed",
}


def sign_off_notice(code: object) -> str | None:
    return SIGN_OFF.get(code) if isinstance(code, str) else None


def task_notice(code: object, labels: dict[str, str]) -> str | None:
    """What the Task page says after the action ``code`` (``labels``: action -> its label)."""
    if isinstance(code, str) and code in labels:
        return f"Saved: {labels[code]}"
    return None
