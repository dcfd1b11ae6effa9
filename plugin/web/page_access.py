"""Who may open a page: the launch session behind each request and the role a page needs
(contract section 5, plugin.web.roles)."""

from __future__ import annotations

import logging

from flask import abort, current_app, g

from plugin.tasks.build import task_input
from plugin.tasks.store import TaskNotFound
from plugin.web.roles import CODER
from plugin.web.security import resolve_session

log = logging.getLogger(__name__)


def load_session():
    ext = current_app.extensions["unitguard"]
    found = resolve_session(ext.sessions)
    g.sid, g.launch, g.url_sid, g.refused = found.sid, found.session, found.url_sid, found.refused
    if g.sid and g.launch is None:
        ext.visit_cache.drop(g.sid)  # the session ended or expired: forget what it read


def require_session():
    if g.refused:
        log.warning("session id refused: %s", g.refused)
        abort(
            403,
            description="This link does not belong to this browser; open unitguard from "
            "the patient's chart.",
        )
    if g.launch is None:
        abort(
            401,
            description="Open unitguard from the patient's chart, or sign in as a coder "
            "(your session has ended or was never started).",
        )
    return g.launch


def require_coder():
    launch = require_session()
    if launch.role != CODER:
        abort(
            403,
            description="The coding work queue is for coders. This session was opened from "
            "one patient's chart and shows that patient's visit only.",
        )
    return launch


def require_clinician():
    launch = require_session()
    if launch.role == CODER or not launch.patient:
        abort(
            403,
            description="Reviews are opened from the patient's visit in the chart; a coder's "
            "session works the queue.",
        )
    return launch


def coder_task(task_id: object) -> dict | None:
    """The Task ``task_id`` when this session is a coder of its EHR, else None (not found, not
    allowed, or no id): for what a page says about a Task just saved."""
    launch = g.get("launch")
    if not isinstance(task_id, str) or not task_id or launch is None or launch.role != CODER:
        return None
    try:
        task = current_app.extensions["unitguard"].store.read(task_id[:64]).task
    except TaskNotFound:
        return None
    return task if task_input(task, "ehr") == launch.iss else None
