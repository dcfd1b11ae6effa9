"""The pages people use, by URL (blueprint "views"): the landing page, logout and the health
check here; the therapist's review at sign-off (plugin.web.review_pages), the coders' queue
(queue_pages, with "next"; its CSV in queue_export, bulk actions in queue_bulk) and Task page
(task_pages). Who may see what follows contract section 5 (plugin.web.page_access). Endpoint
names are the view functions' (``views.queue``, ...)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, g, render_template

from plugin.web.page_access import load_session
from plugin.web.queue_bulk import queue_bulk
from plugin.web.queue_export import queue_csv
from plugin.web.queue_pages import queue, queue_next
from plugin.web.review_pages import review_page, sign_off_view
from plugin.web.security import SESSION_COOKIE, check_csrf
from plugin.web.task_pages import task_action, task_page, task_review

log = logging.getLogger(__name__)
bp = Blueprint("views", __name__)
bp.before_request(load_session)


def healthz():
    return {"status": "ok"}


def landing():
    ext = current_app.extensions["unitguard"]
    registry = getattr(ext, "registry", None)
    ehrs = [(e.name, e.issuer) for e in registry.ehrs] if registry is not None else []
    return render_template("landing.html", ehrs=ehrs, launch=g.launch, sid=g.url_sid)


def logout_confirm():
    if g.launch is None:
        return render_template("logout.html", ended=True, sid=None)
    return render_template("logout.html", ended=False, sid=g.url_sid, csrf=g.launch.csrf)


def logout():
    ext = current_app.extensions["unitguard"]
    if g.launch is not None:
        check_csrf(g.launch.csrf)
        ext.sessions.delete(g.sid)
        ext.revoke_tokens(g.launch)  # at the EHR too, where it offers revocation (best effort)
        ext.visit_cache.drop(g.sid)
        log.info("session ended by the user")
    response = Response(render_template("logout.html", ended=True, sid=None))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


ROUTES = (
    ("/healthz", "GET", healthz),
    ("/", "GET", landing),
    ("/logout", "GET", logout_confirm),
    ("/logout", "POST", logout),
    ("/review/<encounter_id>", "GET", review_page),
    ("/review/<encounter_id>/sign-off", "POST", sign_off_view),
    ("/queue", "GET", queue),
    ("/queue.csv", "GET", queue_csv),
    ("/queue/next", "GET", queue_next),
    ("/queue/bulk", "POST", queue_bulk),
    ("/queue/<task_id>", "GET", task_page),
    ("/queue/<task_id>/review", "GET", task_review),
    ("/queue/<task_id>/action", "POST", task_action),
)
for rule, method, view in ROUTES:
    bp.add_url_rule(rule, view_func=view, methods=[method])
