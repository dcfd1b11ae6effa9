"""Turn a Report into the contract's JSON object or into text for people."""

from __future__ import annotations

from plugin.domain import Severity
from plugin.rules.engine import Report

PRICES = "charges"


def to_dict(report: Report) -> dict[str, object]:
    """The JSON object of contract.md section 1 (plus notes and dollars at risk)."""
    visit = report.visit
    charged: dict[str, float] = {}
    for line in visit.billed or ():
        if line.amount is not None:
            charged[line.code] = charged.get(line.code, 0.0) + line.amount
    out: dict[str, object] = {
        "encounter": visit.encounter,
        "patient": visit.patient,
        "date": visit.day.isoformat() if visit.day else None,
        "method": report.method,
        "payer": visit.payer,
        "billed": visit.billed is not None,
        "total_timed_minutes": report.total_timed_minutes,
        "total_timed_units": report.total_timed_units,
        "total_treatment_minutes": visit.total_minutes,
        "services": [
            {
                "code": s.code,
                "minutes": s.minutes,
                "billed_units": s.billed_units,
                "supported_units": s.supported_units,
                "modifiers": list(s.modifiers),
                "timed": s.timed,
                "suggested_units": s.suggested_units,
                "billed_amount": round(charged[s.code], 2) if s.code in charged else None,
            }
            for s in report.services
        ],
        "findings": [f.to_dict() for f in report.findings],
        "dollars_at_risk": round(report.dollars_at_risk, 2),
        "billed_total": round(report.billed_total, 2),
        # Where the dollars come from: the billed lines' own money (Claim.item.net, a
        # ChargeItem's net price), i.e. the clinic's charges, never the payer's allowed amount.
        "prices": PRICES,
        "notes": list(visit.notes),
        "verdict": report.verdict,
    }
    if report.day is not None:
        out["day"] = {
            "encounters": list(report.day.encounters),
            "total_timed_minutes": report.day.total_timed_minutes,
            "total_timed_units": report.day.total_timed_units,
            "billed_units": report.day.billed_units,
        }
    if visit.unreadable:
        out["unreadable_lines"] = list(visit.unreadable)
    if visit.unread:  # what could not be read, and the checks not decided for it (contract §2)
        out["unread"] = [
            {"resource": u.resource, "part": u.part, "ehr": u.ehr, "why": u.why}
            for u in visit.unread
        ]
        out["unchecked"] = list(report.unchecked)
    return out


_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def to_lines(report: Report) -> list[tuple[str, str | None]]:
    """Text lines for people, each with the colour it may be shown in on a terminal."""
    visit = report.visit
    lines: list[tuple[str, str | None]] = [
        (
            f"{visit.encounter} on {visit.day or 'unknown date'}, method {report.method}"
            + ("" if visit.billed is not None else " (nothing billed yet)"),
            None,
        )
    ]
    for s in report.services:
        kind = "timed" if s.timed else "untimed"
        minutes = "-" if s.minutes is None else f"{s.minutes} min"
        mods = " ".join(s.modifiers)
        lines.append(
            (
                f"  {s.code} {kind:7} {minutes:>7}  billed {s.billed_units}  "
                f"supported {s.supported_units}  {mods}".rstrip(),
                None,
            )
        )
    for f in report.findings:
        where = f" [{f.code}]" if f.code else ""
        lines.append(
            (f"{f.severity.value.upper():7} {f.rule}{where}: {f.message}", _COLOURS[f.severity])
        )
        lines.append((f"        fix: {f.fix} ({f.citation})", None))
    for note in visit.notes:
        lines.append((f"note: {note}", None))
    counts = {sev: sum(1 for f in report.findings if f.severity is sev) for sev in Severity}
    lines.append(
        (
            f"{report.verdict}: {counts[Severity.ERROR]} error(s), "
            f"{counts[Severity.WARNING]} warning(s), {counts[Severity.INFO]} info; "
            f"{report.total_timed_minutes} timed minutes support {report.total_timed_units} "
            f"timed unit{'' if report.total_timed_units == 1 else 's'}; "
            f"${report.dollars_at_risk:,.2f} at risk",
            None,
        )
    )
    return lines
