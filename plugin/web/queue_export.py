"""The filtered queue as CSV: one row per Task, cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import io

from flask import Response, current_app, request

from plugin.csv_safety import safe_text
from plugin.tasks.history import task_history, units_text
from plugin.web.page_access import require_coder
from plugin.web.queue_pages import SORTS, queue_args, queue_filters, queue_row, sort_of

CSV_COLUMNS = (
    "task",
    "patient",
    "mrn",
    "date_of_service",
    "therapist",
    "payer",
    "owner",
    "dollars_at_risk",
    "age_days",
    "status",
    "reopened",
    "rules",
    "encounter",
    "errors",
    "warnings",
    "final_units",  # "Complete: corrected": the units billed in the end ("97112 x 2")
    "completion_note",  # the note of the action that closed the Task
)
CLOSING_ACTIONS = ("complete-corrected", "complete-no-change", "reject")


def neutralise(cell: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (plugin.csv_safety, as the audit's)."""
    return safe_text(cell)


def completion_note(task: dict) -> str:
    """The note of the last action that closed the Task ("" when open or none)."""
    closing = [h for h in task_history(task) if h["action"] in CLOSING_ACTIONS]
    return closing[-1]["note"] if closing and task.get("status") != "requested" else ""


def csv_cells(stored) -> list[object]:
    r = queue_row(stored)
    return [
        f"Task/{r['id']}",
        r["patient_name"],
        r["mrn"],
        r["date"],
        r["therapist"],
        r["payer"],
        r["owner"],
        f"{r['dollars']:.2f}",
        r["age"],
        r["status"],
        "yes" if r["reopened"] else "",
        " ".join(r["rules"]),
        r["encounter"],
        r["errors"],
        r["warnings"],
        units_text(r["final_units"]),
        completion_note(stored.task),
    ]


def queue_csv():
    launch = require_coder()
    store = current_app.extensions["unitguard"].store
    query = queue_args(request.args)
    filters = queue_filters(launch, query)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    offset = 0
    while True:
        rows, matching = store.search(
            **filters, sort=SORTS[sort_of(query)], count=1000, offset=offset
        )
        for stored in rows:
            writer.writerow([neutralise(v) for v in csv_cells(stored)])
        offset += len(rows)
        if not rows or offset >= matching:
            break
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="unitguard-queue.csv"'
    return response
