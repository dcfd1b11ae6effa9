"""What ``unitguard policy show`` prints: which version of each policy table is in force on a
date and where it came from (a shipped table or excerpt, or a CMS file the organisation
imported, by name and release)."""

from __future__ import annotations

from datetime import date

from plugin.policy.model import CmsVersion, Policy

KINDS = (
    ("ptp", "NCCI PTP edits"),
    ("mue", "practitioner MUEs"),
    ("mpfs", "PFS relative values"),
    ("gpci", "GPCIs"),
)


def in_force(policy: Policy, day: date) -> dict[str, list[CmsVersion]]:
    """Per CMS table, the versions in force on ``day``: for the MUEs, RVUs and GPCIs the latest
    that started by then (an import before a shipped excerpt of the same date); for the PTP
    edits every source, since each edit row carries its own dates."""
    found: dict[str, list[CmsVersion]] = {}
    for kind, _ in KINDS:
        versions = [v for v in policy.cms_versions if v.kind == kind and v.effective_from <= day]
        if kind != "ptp" and versions:
            latest = max(v.effective_from for v in versions)
            versions = [v for v in versions if v.effective_from == latest]
            versions = [v for v in versions if v.origin == "imported"] or versions
        found[kind] = versions
    return found


def describe(policy: Policy, day: date) -> list[str]:
    """The lines of ``policy show`` for one date."""
    lines = [f"Policy in force on {day.isoformat()}:"]
    chosen = in_force(policy, day)
    for kind, label in KINDS:
        versions = chosen[kind]
        if not versions:
            lines.append(f"  {label}: none for this date")
        for v in versions:
            grade = f" [{v.confidence}]" if v.confidence else ""
            lines.append(
                f"  {label}: {v.origin}, from {v.effective_from.isoformat()}: {v.source}{grade}"
            )
    schedule = policy.mpfs.schedule_for(day)
    if schedule is not None:
        place = policy.mpfs.locality or "national"
        lines.append(
            f"  fee schedule amounts: {schedule.year} from {schedule.effective_from.isoformat()}"
            f", conversion factor {schedule.conversion_factor} ({place}): {schedule.source}"
            f" [{schedule.confidence}]"
        )
    edits = policy.ptp_edits_for(day)
    caps = policy.unit_caps(day)
    lines.append(f"  in force: {len(edits)} PTP edits, MUEs for {len(caps)} codes")
    lines.append("Tables:")
    for item in policy.provenance:
        when = item.effective_from.isoformat() if item.effective_from else "-"
        lines.append(f"  {item.name:10} v{item.version} from {when}: {item.source}")
    return lines
