"""What a coder's action does to a review Task (the Task page's buttons and the queue's bulk
actions alike): checks first, each refusal with what to do, then the changed Task. No Flask
here: the pages turn a refusal into their own answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from plugin.tasks.history import final_units_outputs, history_entry, units_text
from plugin.tasks.roster import Coder, is_person
from plugin.web.writeback import CLOSED, reopened_input

# action -> (label in the history, new status, business status); "reopen" opens a closed Task
ACTIONS = {
    "start": ("Started", "in-progress", "in-review"),
    "complete-corrected": ("Completed: corrected", "completed", "corrected"),
    "complete-no-change": ("Completed: no change", "completed", "no-change"),
    "reject": ("Rejected", "rejected", "rejected"),
    "reassign": ("Reassigned", None, None),
    "reopen": ("Reopened", "requested", "reopened"),
}
CLOSING = ("complete-corrected", "complete-no-change", "reject")
ME, NOBODY = "me", "none"  # the owner choices besides the EHR's coders
MAX_UNITS = 99


class Refused(Exception):
    """The action was not done; ``message`` says why and what to do, ``status`` is the HTTP
    status, ``confirm`` that the same action may be confirmed ("Take it" from another coder)."""

    def __init__(self, message: str, status: int = 400, confirm: bool = False) -> None:
        super().__init__(message)
        self.message, self.status, self.confirm = message, status, confirm


@dataclass(frozen=True)
class Coding:
    """Who acts, and the EHR's people they may hand a Task to."""

    me: Coder  # the signed-in coder
    find: Callable[[str], Coder | None]  # one of the EHR's coders by reference, else None
    team: dict  # the owner of an unassigned Task (the coding team)


@dataclass(frozen=True)
class Asked:
    """What the coder asked for: the button, the note, the owner chosen, the units billed."""

    action: str
    note: str = ""
    owner: str = ""
    confirm: bool = False
    units: dict[str, int] | None = None
    unit_errors: tuple[str, ...] = field(default=())


def owner_for(choice: str, coding: Coding) -> dict:
    """The Task owner a choice names: "me", "none" (the coding team) or one of the EHR's
    coders; anyone else is refused (contract section 5: 400, the form kept)."""
    if choice == ME:
        return coding.me.owner()
    if choice == NOBODY:
        return dict(coding.team)
    if not choice:
        raise Refused('Choose who should take the review (or "me"), then press Reassign again.')
    coder = coding.find(choice)
    if coder is None:
        raise Refused(
            "That is not one of this EHR's coders: choose a name from the list (or "
            '"Unassigned" for the coding team).'
        )
    return coder.owner()


def _check(task: dict, asked: Asked, coding: Coding) -> None:
    if asked.action not in ACTIONS:
        raise Refused("Choose one of the buttons below.")
    closed = task.get("status") in CLOSED
    if closed and asked.action != "reopen":
        raise Refused("This review is closed. To change it, give a reason and press Reopen.", 409)
    if not closed and asked.action == "reopen":
        raise Refused("This review is still open; there is nothing to reopen.", 409)
    if asked.action in ("reject", "reopen") and not asked.note:
        word = "reject" if asked.action == "reject" else "reopen"
        raise Refused(f"Write the reason to {word} in the note box, then press the button again.")
    if asked.action == "complete-corrected":
        if asked.unit_errors:
            raise Refused(
                f"Units billed in the end: {'; '.join(asked.unit_errors)}. Enter whole "
                f"numbers from 0 to {MAX_UNITS}, then press the button again."
            )
        if not asked.note:
            raise Refused(
                "Say in the note what was corrected, check the units billed in the end, then "
                "press Complete: corrected again."
            )
    if asked.action == "start" and not asked.confirm:
        holder = (task.get("owner") or {}).get("reference")
        if is_person(holder) and holder != coding.me.reference:
            name = (task.get("owner") or {}).get("display") or holder
            raise Refused(
                f"{name} holds this review. Take it from them? Press Yes, take it to confirm.",
                409,
                confirm=True,
            )


def apply(
    task: dict, asked: Asked, coding: Coding, now: datetime | None = None
) -> tuple[dict, str]:
    """The Task after the action, and the history's label for it; Refused when it cannot be
    done (nothing changed)."""
    _check(task, asked, coding)
    task = dict(task)
    label, new_status, business = ACTIONS[asked.action]
    if asked.action == "reassign":
        task["owner"] = owner_for(asked.owner, coding)
        shown = task["owner"].get("display") or task["owner"].get("reference")
        label = f"Reassigned to {shown}"
    else:
        task["status"] = new_status
        task["businessStatus"] = {"text": business}
        if asked.action == "start":
            task["owner"] = coding.me.owner()
        if asked.action == "reopen":
            task["input"] = [*task.get("input", []), reopened_input(asked.note)]
        if asked.action == "complete-corrected":
            units = asked.units or {}
            task["output"] = final_units_outputs(units)
            if units:
                label = f"{label} (billed {units_text(units)})"
    task["note"] = [
        *task.get("note", []),
        history_entry(
            asked.action, label, coding.me.reference, asked.note, now, who_name=coding.me.name
        ),
    ]
    task["lastModified"] = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return task, label


def read_units(form, codes: list[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    """The units billed in the end, from the form's ``units-<code>`` fields of the review's
    codes: (units by code, what was wrong with any of them)."""
    units, errors = {}, []
    for code in codes:
        raw = str(form.get(f"units-{code}", "")).strip()
        if not raw.isdigit() or int(raw) > MAX_UNITS:
            errors.append(f"{code} is not a number of units")
            continue
        units[code] = int(raw)
    return units, tuple(errors)
