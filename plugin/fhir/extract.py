"""Build the plain visit model from FHIR R4 resources (contract.md section 2).

``build_visit`` assembles the Visit from the readers beside it: the encounter (encounters),
its minutes (minutes), services (procedures), note (visit_notes), billed lines and payer
(visit_billing), goals and measures (measures), spend and episode. Missing or dangling data
becomes an explicit None or a note on the Visit, never an exception, except when there is no
visit to review at all (InputError).
"""

from __future__ import annotations

from plugin.domain import BilledLine, DayVisit, Service, Visit
from plugin.fhir.billing import patient_lines
from plugin.fhir.encounters import patient_encounters, pick_encounter
from plugin.fhir.episode import UNKNOWN_DISCIPLINE, read_episodes
from plugin.fhir.index import Index, obj, text
from plugin.fhir.measures import patient_goals, visit_measures
from plugin.fhir.minutes import TOTAL_TIMED, TOTAL_TREATMENT, length_minutes, stated_minutes
from plugin.fhir.practitioners import DISCIPLINE_OF, is_signed_by, role_of_reference
from plugin.fhir.procedures import CodeMap, code_of, encounter_day, procedures_of, services_of
from plugin.fhir.spend import visit_spend
from plugin.fhir.unread import visit_unread
from plugin.fhir.visit_billing import assigned_lines, visit_claims, visit_payer
from plugin.fhir.visit_notes import earlier_visits, visit_note
from plugin.policy.model import Policy

__all__ = ["build_visit"]


def _encounter_disciplines(
    index: Index, policy: Policy, encounter: str, lines: list[BilledLine]
) -> set[str]:
    """The therapy disciplines of another encounter, cheaply (no minutes, no notes): the roles
    of who performed its therapy procedures, and its lines' GP/GO/GN."""
    memo_key = ("disciplines", encounter)
    found = index.memo.get(memo_key)
    if found is not None:
        return found
    modifiers = policy.discipline_modifiers
    found = set()
    for line in lines:
        if line.encounter == encounter:
            for m in line.modifiers:
                if m in modifiers:
                    found.add(modifiers[m])
    therapy_codes = policy.therapy_codes
    day = encounter_day(index, encounter)
    for procedure in procedures_of(index, encounter):
        if procedure.get("status") not in ("completed", "stopped"):
            continue
        if code_of(index, procedure) not in therapy_codes:
            continue
        items = procedure.get("performer")
        for item in items if isinstance(items, list) else ():
            actor = item.get("actor") if isinstance(item, dict) else None
            role = role_of_reference(index, actor, day)
            if role in DISCIPLINE_OF:
                found.add(DISCIPLINE_OF[role])
    index.memo[memo_key] = found
    return found


def _disciplines(policy: Policy, services: list[Service], lines: list[BilledLine]) -> set[str]:
    modifiers = policy.discipline_modifiers
    found = set()
    for line in lines:
        for m in line.modifiers:
            if m in modifiers:
                found.add(modifiers[m])
    for service in services:
        for p in service.performers:
            if p.furnished and p.discipline in _THERAPY_DISCIPLINES:
                found.add(p.discipline)
    return found


# The disciplines a furnishing performer gives a visit (the values of DISCIPLINE_OF).
_THERAPY_DISCIPLINES = frozenset(DISCIPLINE_OF.values())


def build_visit(
    index: Index,
    policy: Policy,
    encounter_id: str | None = None,
    method: str | None = None,
    code_map: CodeMap | None = None,
) -> Visit:
    """The Visit for one Encounter of the index (the latest one when no id is given)."""
    code_map = code_map or {}
    enc = pick_encounter(index, encounter_id)
    encounter = f"Encounter/{text(enc.get('id'))}"
    patient = index.key(enc.get("subject"))
    period = obj(enc.get("period"))
    day = index.local_day(period.get("start"))
    if day is None:
        index.note(f"{encounter} has no period.start; the date of service is unknown")

    documents, note_text = visit_note(index, encounter)
    services = services_of(index, policy, encounter, note_text, code_map)

    measures = visit_measures(index, patient, encounter)

    goals = patient_goals(index, patient)

    total_minutes = length_minutes(index, enc, encounter)
    if total_minutes is None:
        total_minutes = stated_minutes(TOTAL_TREATMENT, note_text)
        if total_minutes is not None:
            index.note(f"total treatment time {total_minutes} minutes read from the visit note")
    stated_timed = stated_minutes(TOTAL_TIMED, note_text)

    raw_lines, unreadable = patient_lines(index, patient)
    lines = assigned_lines(index, patient, raw_lines)
    visit_lines = [ln for ln in lines if ln.encounter == encounter]
    other_lines = [ln for ln in lines if ln.encounter != encounter]
    claims = visit_claims(index, encounter)
    has_billing = bool(visit_lines) or bool(claims)
    payer, medicare, payer_missing = visit_payer(index, claims, patient, policy)
    chosen = method or policy.method_for_payer(payer)
    unread = tuple(
        ref
        for ref, where, when in unreadable
        if where == encounter or (where is None and day is not None and when == day)
    )

    mine = _disciplines(policy, services, visit_lines)
    same_day = []
    if day is not None:
        for _, key, other_day in patient_encounters(index, patient):
            if key == encounter or other_day != day:
                continue
            _, other_note = visit_note(index, key)
            other_services = services_of(index, policy, key, other_note, code_map)
            other_billed = [ln for ln in lines if ln.encounter == key]
            if not other_services and not other_billed:
                continue
            theirs = _disciplines(policy, other_services, other_billed)
            if mine and theirs and not mine & theirs:
                continue
            same_day.append(DayVisit(key, tuple(other_services), tuple(other_billed)))

    required = medicare or any(p in (payer or "").lower() for p in policy.episode.payers)
    episodes: tuple = ()
    if required:

        def disciplines_of(key: str) -> set[str]:
            found = _encounter_disciplines(index, policy, key, lines)
            if found:
                return found
            # A therapy visit whose discipline is not said (Epic: no charges, no credential)
            _, other_note = visit_note(index, key)
            other = services_of(index, policy, key, other_note, code_map)
            billed = any(ln.encounter == key for ln in lines)
            return {UNKNOWN_DISCIPLINE} if other or billed else set()

        episodes = read_episodes(
            index,
            policy,
            patient,
            day,
            mine,
            patient_encounters(index, patient),
            disciplines_of,
            lines,
        )

    return Visit(
        encounter=encounter,
        patient=patient,
        day=day,
        total_minutes=total_minutes,
        services=tuple(services),
        billed=tuple(visit_lines) if has_billing or unread else None,
        goals=tuple(goals),
        measures=tuple(measures),
        note_text=note_text,
        note_signed=any(is_signed_by(index, d) for d in documents),
        has_note=bool(documents),
        payer=payer,
        medicare=medicare,
        method=chosen,
        other_lines=tuple(other_lines),
        earlier_visits=tuple(earlier_visits(index, patient, encounter, day, policy)),
        spend=visit_spend(index, policy, patient, claims, medicare, day),
        notes=tuple(index.notes),
        stated_timed_minutes=stated_timed,
        same_day=tuple(same_day),
        unreadable=unread,
        episodes=episodes,
        episode_required=required,
        unread=visit_unread(
            index.unread,
            [f"DocumentReference/{text(d.get('id'))}" for d in documents],
            {p.ref for s in services for p in s.performers},
            payer is not None,
            payer_missing,
        ),
    )
