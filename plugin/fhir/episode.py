"""The plan-of-care episode around a visit (contract §2b, "The episode"): the discipline's plans
of care and who certified them, its progress reports and who wrote them, and its treatment days.

Reads CarePlan (author/contributor, period, created), Provenance (signature.who/when targeting
a CarePlan), plan-of-care DocumentReferences (LOINC 18776-5) authenticated by a physician/NPP,
the CY2025 order exception (ServiceRequest by a physician/NPP plus a Communication sending the
plan), progress-report DocumentReferences (typed or titled), and the patient's encounters.
What could not be read is said in ``Episode.unknown`` / ``history_unknown``, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from plugin.domain import Episode, PlanOfCare, ProgressReport
from plugin.fhir.index import Index, concept_text, obj, seq, text
from plugin.fhir.practitioners import ASSISTANT_OF, role_of_reference
from plugin.policy.model import Policy

LOINC = "http://loinc.org"
PLAN_INTENTS = frozenset({"plan", "order", "proposal", ""})
PLAN_STATUSES = frozenset({"active", "completed", "on-hold", ""})
DISCIPLINE_WORDS = (
    ("physical therap", "PT"),
    ("physiotherap", "PT"),
    ("occupational therap", "OT"),
    ("speech", "SLP"),
    ("language patholog", "SLP"),
)
DISCIPLINE_TOKENS = {"PT": "PT", "OT": "OT", "SLP": "SLP", "ST": "SLP"}
# What ``disciplines_of`` gives for a visit with services but no discipline read (no modifier,
# no performer credential: Epic before charges).
UNKNOWN_DISCIPLINE = "?"


def discipline_named(*labels: str) -> str | None:
    """PT, OT or SLP named in free text ('Physical Therapy Plan of Care', 'PT POC')."""
    for label in labels:
        lowered = label.lower()
        for words, discipline in DISCIPLINE_WORDS:
            if words in lowered:
                return discipline
        for token in label.replace("/", " ").replace("-", " ").split():
            if token.upper() in DISCIPLINE_TOKENS:
                return DISCIPLINE_TOKENS[token.upper()]
    return None


def _codes(concepts: Iterable[object]) -> set[str]:
    return {
        text(obj(c).get("code"))
        for concept in concepts
        for c in seq(obj(concept).get("coding"))
        if text(obj(c).get("system")) in (LOINC, "") and text(obj(c).get("code"))
    }


def _of_patient(index: Index, rtype: str, patient: str | None) -> list[dict]:
    """The patient's resources of a type, found once per index (plans, reports, orders and
    signers all ask again)."""
    found = index.by_type.get(rtype)
    if not found:
        return []
    return index.cached(
        ("of-patient", rtype, patient),
        lambda: [r for r in found if index.key(r.get("subject") or r.get("patient")) == patient],
    )


def _role(index: Index, reference: object) -> str | None:
    return role_of_reference(index, reference)


def _plan_discipline(index: Index, plan: dict) -> str | None:
    labels = [text(plan.get("title")), text(plan.get("description"))]
    labels += [concept_text(c) for c in seq(plan.get("category"))]
    found = discipline_named(*labels)
    if found:
        return found
    for ref in [plan.get("author"), *seq(plan.get("contributor"))]:
        role = _role(index, ref)
        if role:
            role = ASSISTANT_OF.get(role, role)
            if role in DISCIPLINE_TOKENS.values():
                return role
    return None


def _certification(
    index: Index, policy: Policy, plan: dict, key: str, plan_documents: list[dict]
) -> tuple[date | None, str]:
    """The earliest date a physician/NPP signed the plan, and how it was read."""
    certifiers = policy.episode.certifiers
    found: list[tuple[date, str]] = []
    created = index.local_day(plan.get("created"))
    for where, ref in [("author", plan.get("author"))] + [
        ("contributor", c) for c in seq(plan.get("contributor"))
    ]:
        if _role(index, ref) in certifiers:
            if created:
                found.append((created, f"{index.key(ref)} (CarePlan.{where})"))
            else:
                index.note(f"{key}: signed by a physician/NPP but undated (no CarePlan.created)")
    for provenance in index.by_type.get("Provenance", ()):
        if key not in {index.key(t) for t in seq(provenance.get("target"))}:
            continue
        for signature in seq(provenance.get("signature")):
            signature = obj(signature)
            when = index.local_day(signature.get("when"))
            if when and _role(index, signature.get("who")) in certifiers:
                found.append((when, f"{index.key(signature.get('who'))} (Provenance)"))
    for document in plan_documents:
        related = {index.key(r) for r in seq(obj(document.get("context")).get("related"))}
        period = obj(plan.get("period"))
        covers = not related and index.local_day(period.get("start")) is not None
        if key not in related and not covers:
            continue
        when = index.local_day(document.get("date"))
        for ref in seq(document.get("authenticator")) or [document.get("authenticator")]:
            if when and _role(index, ref) in certifiers:
                doc = f"DocumentReference/{text(document.get('id'))}"
                found.append((when, f"{index.key(ref)} ({doc})"))
    if not found:
        return None, ""
    return min(found)


def _signed_orders(index: Index, policy: Policy, patient: str | None) -> list[dict]:
    return [
        r
        for r in _of_patient(index, "ServiceRequest", patient)
        if _role(index, r.get("requester")) in policy.episode.certifiers
        and index.local_day(r.get("authoredOn"))
    ]


def _order_exception(
    index: Index, policy: Policy, patient: str | None, key: str, start: date | None
) -> tuple[bool, date | None]:
    """CY2025: a signed, dated physician/NPP order, and the plan sent within 30 days."""
    orders = _signed_orders(index, policy, patient)
    if not orders or start is None:
        return False, None
    for message in _of_patient(index, "Communication", patient):
        about = {index.key(a) for a in seq(message.get("about"))}
        about |= {index.key(a) for a in seq(message.get("basedOn"))}
        sent = index.local_day(message.get("sent"))
        if key in about and sent and (sent - start).days <= policy.episode.order_exception_days:
            return True, sent
    return False, None


def read_plans(
    index: Index, policy: Policy, patient: str | None, discipline: str
) -> list[PlanOfCare]:
    documents = [
        d
        for d in _of_patient(index, "DocumentReference", patient)
        if _codes([d.get("type")]) & policy.episode.plan_of_care_loinc
    ]
    plans = []
    for plan in _of_patient(index, "CarePlan", patient):
        if text(plan.get("intent")) not in PLAN_INTENTS:
            continue
        if text(plan.get("status")) not in PLAN_STATUSES:
            continue
        if _plan_discipline(index, plan) not in (discipline, None):
            continue
        key = f"CarePlan/{text(plan.get('id'))}"
        period = obj(plan.get("period"))
        start = index.local_day(period.get("start")) or index.local_day(plan.get("created"))
        end = index.local_day(period.get("end"))
        certified_on, certified_by = _certification(index, policy, plan, key, documents)
        exception, sent = (False, None)
        if certified_on is None:
            exception, sent = _order_exception(index, policy, patient, key, start)
        plans.append(PlanOfCare(key, start, end, certified_on, certified_by, exception, sent))
    plans.sort(key=lambda p: (p.start or date.min, p.ref))
    return plans


def read_reports(
    index: Index, policy: Policy, patient: str | None, discipline: str
) -> list[ProgressReport]:
    episode = policy.episode
    found = []
    for document in _of_patient(index, "DocumentReference", patient):
        if text(document.get("status")) == "entered-in-error":
            continue
        codes = _codes([document.get("type"), *seq(document.get("category"))])
        titles = [
            text(document.get("description")),
            concept_text(document.get("type")),
            *(
                text(obj(obj(c).get("attachment")).get("title"))
                for c in seq(document.get("content"))
            ),
        ]
        titled = any("progress report" in t.lower() for t in titles)
        if codes & episode.not_progress_report_loinc and not titled:
            continue
        if not (codes & episode.progress_report_loinc or titled):
            continue
        day = index.local_day(document.get("date")) or index.local_day(
            obj(obj(document.get("context")).get("period")).get("start")
        )
        if day is None:
            index.note(
                f"DocumentReference/{text(document.get('id'))}: a progress report "
                "without a date; not counted"
            )
            continue
        authors = seq(document.get("author")) or [document.get("authenticator")]
        role, author = None, ""
        for ref in authors:
            role = _role(index, ref)
            author = index.key(ref) or text(obj(ref).get("display"))
            if role:
                break
        named = discipline_named(*titles)
        role_discipline = ASSISTANT_OF.get(role or "", role)
        if named and named != discipline:
            continue
        if (
            not named
            and role_discipline in DISCIPLINE_TOKENS.values()
            and role_discipline != discipline
        ):
            continue
        found.append(
            ProgressReport(f"DocumentReference/{text(document.get('id'))}", day, author, role)
        )
    found.sort(key=lambda r: (r.day, r.ref))
    return found


def _unread_signers(index: Index, patient: str | None, plans: list[PlanOfCare]) -> str:
    """A signer of the plans (author, contributor, Provenance signature) whose role cannot be
    read because the record read does not hold it (a CDS prefetch, a failed read): its
    certification is then unknown, not absent."""
    keys = {p.ref for p in plans}
    refs: list[object] = []
    for plan in _of_patient(index, "CarePlan", patient):
        if f"CarePlan/{text(plan.get('id'))}" in keys:
            refs += [plan.get("author"), *seq(plan.get("contributor"))]
    for provenance in index.by_type.get("Provenance", ()):
        if keys & {index.key(t) for t in seq(provenance.get("target"))}:
            refs += [obj(s).get("who") for s in seq(provenance.get("signature"))]
    for ref in refs:
        key = index.key(ref)
        if key and key not in index.by_key and _role(index, ref) is None:
            return key
    return ""


def _reason(note: str) -> str:
    """A fetch note as the reason episode-unknown gives: without the 'server note (warning): '
    the review puts before it, nor the tail saying the review went on."""
    if note.startswith("server note (") and "): " in note:
        note = note.split("): ", 1)[1]
    for tail in ("; the review goes on without those resources", "; the review goes on without"):
        note = note.split(tail)[0]
    return note


def _sole_plan_discipline(index: Index, patient: str | None, day: date) -> set[str]:
    """The visit's discipline when nothing on the visit says it (no GP/GO/GN line, no performer
    credential: Epic before charges) but every plan of care the patient has begun by that day
    is of one discipline. Said in a reading note; two disciplines decide nothing."""
    named = set()
    for plan in _of_patient(index, "CarePlan", patient):
        start = index.local_day(obj(plan.get("period")).get("start")) or index.local_day(
            plan.get("created")
        )
        if start is not None and start > day:
            continue
        discipline = _plan_discipline(index, plan)
        if discipline:
            named.add(discipline)
    if len(named) != 1:
        return set()
    (discipline,) = named
    index.note(
        f"the visit's discipline is not on its lines or performers; taken as {discipline}, "
        "the discipline of the patient's plans of care"
    )
    return named


def read_episodes(
    index: Index,
    policy: Policy,
    patient: str | None,
    day: date | None,
    disciplines: set[str],
    encounters: list[tuple[float, str, date | None]],
    disciplines_of: Callable[[str], set[str]],
) -> tuple[Episode, ...]:
    """One Episode per therapy discipline of the visit."""
    if day is None:
        return ()
    # Reading notes the fetch left (plugin/ehr/fetch.py): a search the EHR refused (HTTP 400),
    # or a type it does not serve by patient.
    refused = [_reason(n) for n in index.notes if "refused" in n or "does not serve" in n]
    therapy = disciplines & {"PT", "OT", "SLP"}
    inferred = False
    if not therapy:
        therapy = _sole_plan_discipline(index, patient, day)
        inferred = bool(therapy)
    episodes = []
    for discipline in sorted(therapy):
        plans = index.cached(
            ("plans", patient, discipline),
            lambda d=discipline: read_plans(index, policy, patient, d),
        )
        reports = index.cached(
            ("reports", patient, discipline),
            lambda d=discipline: read_reports(index, policy, patient, d),
        )
        counted = {discipline, UNKNOWN_DISCIPLINE} if inferred else {discipline}
        days = sorted(
            {
                when
                for _, key, when in encounters
                if when is not None and when <= day and counted & disciplines_of(key)
            }
        )
        unknown = history = ""
        certified = any(p.certified_on or p.order_exception for p in plans)
        unsigned_why = next((n for n in refused if "Provenance" in n), "")
        unread = _unread_signers(index, patient, plans) if plans and not certified else ""
        if unread and not unsigned_why:
            unsigned_why = f"{unread}, who signed it, is not in the record read"
        if plans and not certified and not unsigned_why and _signed_orders(index, policy, patient):
            # A signed order without the messages: the CY2025 exception may certify the plan.
            unsigned_why = next((n for n in refused if "Communication" in n), "")
        if plans and not certified and unsigned_why:
            # The plans' signatures may be in the Provenance the EHR would not give.
            unknown = (
                f"the {discipline} plan of care's certification could not be read ({unsigned_why})"
            )
        if not plans:
            why = next((n for n in refused if "CarePlan" in n), "")
            unknown = f"no {discipline} plan of care could be read" + (
                f" ({why})" if why else " (none in the record read)"
            )
        why = next((n for n in refused if "Encounter" in n or "Procedure" in n), "")
        if why:
            history = f"earlier {discipline} visits could not be read ({why})"
        episodes.append(
            Episode(discipline, tuple(plans), tuple(reports), tuple(days), unknown, history)
        )
    return tuple(episodes)
