"""A review Task's history: one FHIR Annotation per action (who, when, what, the note), and the
units a coder finally billed when completing it corrected (kept as Task outputs)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from plugin.tasks.build import ACTION_EXTENSION, INPUT_SYSTEM

FINAL_UNITS = "units-billed"  # Task.output: the units finally billed of one code


def history_entry(
    action: str,
    what: str,
    who: str | None,
    note: str = "",
    when: datetime | None = None,
    who_name: str | None = None,
) -> dict:
    """One line of a Task's history as a FHIR Annotation: the action's code and what it did in
    extensions, the person's note as the text (what it did when there is no note). The time is
    an instant with its offset (UTC)."""
    entry: dict = {
        "extension": [
            {"url": ACTION_EXTENSION, "valueCode": action},
            {"url": f"{ACTION_EXTENSION}-what", "valueString": what},
        ],
        "time": (when or datetime.now(UTC)).isoformat(timespec="seconds"),
        "text": note or what,
    }
    if who and "/" in who:
        entry["authorReference"] = {"reference": who, **({"display": who_name} if who_name else {})}
    elif who or who_name:
        entry["authorString"] = who_name or who
    return entry


def shown_time(value: str, zone: tzinfo | None = None) -> str:
    """An instant as people read it, with its time zone: "2026-03-04 10:05 UTC", or in
    ``zone`` (the organisation's) "2026-03-04 05:05 EST". A time without an offset was written
    as UTC by this app; text that is no time is shown as it is."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value or "")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(zone or UTC)
    name = moment.tzname() or moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} {'UTC' if name in ('UTC', '+0000') else name}"


def task_history(task: dict, zone: tzinfo | None = None) -> list[dict]:
    """The Task's history, oldest first: who, when (the instant and as shown, with its zone),
    what and the note."""
    out = []
    for note in task.get("note") or []:
        ext = {e.get("url"): e for e in note.get("extension") or [] if isinstance(e, dict)}
        action = (ext.get(ACTION_EXTENSION) or {}).get("valueCode")
        what = (ext.get(f"{ACTION_EXTENSION}-what") or {}).get("valueString") or action
        author = (
            note.get("authorString")
            or (note.get("authorReference") or {}).get("display")
            or (note.get("authorReference") or {}).get("reference")
        )
        text = note.get("text", "")
        out.append(
            {
                "action": action or "note",
                "what": what or "Note",
                "who": author or "—",
                "when": note.get("time", ""),
                "shown": shown_time(note.get("time", ""), zone),
                "note": "" if text == what else text,
            }
        )
    return out


def final_units_outputs(units: dict[str, int]) -> list[dict]:
    """Task outputs recording the units finally billed, one per code."""
    return [
        {
            "type": {"coding": [{"system": INPUT_SYSTEM, "code": FINAL_UNITS}], "text": code},
            "valueInteger": n,
        }
        for code, n in units.items()
    ]


def final_units(task: dict) -> dict[str, int]:
    """The units finally billed, by code, as the last "Complete: corrected" recorded them."""
    found = {}
    for item in task.get("output") or []:
        codings = (item.get("type") or {}).get("coding") or []
        if any(c.get("system") == INPUT_SYSTEM and c.get("code") == FINAL_UNITS for c in codings):
            code = (item.get("type") or {}).get("text")
            if code and isinstance(item.get("valueInteger"), int):
                found[code] = item["valueInteger"]
    return found


def units_text(units: dict[str, int]) -> str:
    """ "97112 x 2, 97110 x 1" (the units finally billed, as the history and the CSV say it)."""
    return ", ".join(f"{code} x {n}" for code, n in units.items())
