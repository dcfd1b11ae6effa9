"""The plan-of-care episode around a visit (contract §2b, "The episode"): the discipline's plans
of care and who certified them, its progress reports and who wrote them, and its treatment days.

Reads CarePlan (author/contributor, period, created), Provenance (signature.who/when targeting
a CarePlan), plan-of-care DocumentReferences (LOINC 18776-5) authenticated by a physician/NPP,
the CY2025 order exception (ServiceRequest by a physician/NPP plus a Communication sending the
plan), progress-report DocumentReferences (typed or titled), and the patient's encounters.
What could not be read is said in ``Episode.unknown`` / ``history_unknown``, never guessed.

Each of the patient's CarePlans and DocumentReferences is read once per index (a patient's
index in the audit holds a year of visits, each asking about the same plans and reports); a
Bundle without a resource type skips its step.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from plugin.domain import BilledLine, Episode, PlanOfCare, ProgressReport, Unread
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
THERAPY = frozenset(DISCIPLINE_TOKENS.values())
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


def _add_codes(concept: object, found: set[str]) -> None:
    """Add the LOINC codes of a CodeableConcept to ``found`` (a coding without a system
    counts: EHRs often leave it out)."""
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if not isinstance(codings, list):
        return
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        code = coding.get("code")
        if isinstance(code, str) and code:
            system = coding.get("system")
            if not isinstance(system, str) or system in (LOINC, ""):
                found.add(code)


def _of_patient(index: Index, rtype: str, patient: str | None) -> list[dict]:
    """The patient's resources of a type (each caller reads them once per index)."""
    found = index.by_type.get(rtype)
    if not found:
        return []
    key = index.key
    return [r for r in found if key(r.get("subject") or r.get("patient")) == patient]


@dataclass(slots=True)
class _Plan:
    """One of the patient's CarePlans as the episode reads it, read once per index."""

    resource: dict
    ref: str  # "CarePlan/x"
    begins: date | None  # period.start
    start: date | None  # period.start, else created
    end: date | None
    created: date | None
    discipline: str | None
    counts: bool  # its intent and status let it be a plan of care
    read: PlanOfCare | None = None  # with its certification, once read


@dataclass(frozen=True, slots=True)
class _PlanDocument:
    """A plan-of-care DocumentReference: what it relates to, when, and who authenticated it."""

    ref: str
    related: frozenset[str | None]
    day: date | None
    authenticators: list


@dataclass(frozen=True, slots=True)
class _Report:
    """A progress-report DocumentReference before its discipline is matched (day None: it has
    no date, and is noted and not counted)."""

    ref: str
    day: date | None
    author: str
    role: str | None
    named: str | None  # the discipline its titles name
    role_discipline: str | None  # its author's discipline (an assistant's therapist's)


def _plan_discipline(index: Index, plan: dict) -> str | None:
    """The discipline the plan's title, description or category names, else its author's or
    a contributor's (in that order; each label read only if the ones before name none)."""
    found = discipline_named(text(plan.get("title"))) or discipline_named(
        text(plan.get("description"))
    )
    if found:
        return found
    for concept in seq(plan.get("category")):
        found = discipline_named(concept_text(concept))
        if found:
            return found
    for ref in [plan.get("author"), *seq(plan.get("contributor"))]:
        role = role_of_reference(index, ref)
        if role:
            role = ASSISTANT_OF.get(role, role)
            if role in THERAPY:
                return role
    return None


def _day(index: Index, value: object) -> date | None:
    """``index.local_day``, at once for a plain date ("2026-02-16", as plans give theirs)."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return index.local_day(value)


def _read_plans(index: Index, patient: str | None) -> list[_Plan]:
    """Every CarePlan of the patient, in Bundle order."""
    found = []
    key = index.key
    for plan in index.by_type.get("CarePlan", ()):
        if key(plan.get("subject") or plan.get("patient")) != patient:
            continue
        period = obj(plan.get("period"))
        begins = _day(index, period.get("start"))
        created = _day(index, plan.get("created"))
        counts = text(plan.get("intent")) in PLAN_INTENTS and (
            text(plan.get("status")) in PLAN_STATUSES
        )
        found.append(
            _Plan(
                plan,
                f"CarePlan/{text(plan.get('id'))}",
                begins,
                begins or created,
                _day(index, period.get("end")),
                created,
                _plan_discipline(index, plan),
                counts,
            )
        )
    return found


@dataclass(slots=True)
class _Record:
    """What the episode reads of one patient, once per index (a patient's index in the audit
    holds a year of visits, each asking about the same plans, reports and encounters)."""

    plans: list[_Plan]  # every CarePlan of the patient, in Bundle order
    documents: tuple[list[_PlanDocument], list[_Report]] | None = None  # once read
    # discipline -> its plans of care and progress reports, once read
    read: dict[str, tuple[tuple[PlanOfCare, ...], tuple[ProgressReport, ...]]] = field(
        default_factory=dict
    )
    days: _KnownDays | None = None  # treatment days as far as visits have asked


def _record(index: Index, patient: str | None) -> _Record:
    """The patient's record of the episode, its CarePlans read on first use."""
    memo_key = ("episode", patient)
    found = index.memo.get(memo_key)
    if found is None:
        found = index.memo[memo_key] = _Record(_read_plans(index, patient))
    return found


def _titles(document: dict, kind: object) -> list[str]:
    """The titles a DocumentReference gives itself: description, type, attachments' titles
    (the empty ones left out)."""
    titles = []
    description = document.get("description")
    if isinstance(description, str) and description:
        titles.append(description)
    if isinstance(kind, dict):
        titles.append(concept_text(kind))
    contents = document.get("content")
    for content in contents if isinstance(contents, list) else ():
        attachment = content.get("attachment") if isinstance(content, dict) else None
        title = attachment.get("title") if isinstance(attachment, dict) else None
        if isinstance(title, str) and title:
            titles.append(title)
    return titles


def _documents(
    index: Index, policy: Policy, patient: str | None, record: _Record
) -> tuple[list[_PlanDocument], list[_Report]]:
    """The patient's plan-of-care documents and progress reports, in one pass over their
    DocumentReferences, once per index."""
    found = record.documents
    if found is not None:
        return found
    episode = policy.episode
    plan_documents: list[_PlanDocument] = []
    reports: list[_Report] = []
    key = index.key
    for document in index.by_type.get("DocumentReference", ()):
        if key(document.get("subject") or document.get("patient")) != patient:
            continue
        kind = document.get("type")
        codes: set[str] = set()
        if kind:
            _add_codes(kind, codes)
        if codes and codes & episode.plan_of_care_loinc:
            related = frozenset(key(r) for r in seq(obj(document.get("context")).get("related")))
            authenticators = seq(document.get("authenticator")) or [document.get("authenticator")]
            day = index.local_day(document.get("date"))
            ref = f"DocumentReference/{text(document.get('id'))}"
            plan_documents.append(_PlanDocument(ref, related, day, authenticators))
        if document.get("status") == "entered-in-error":
            continue
        categories = document.get("category")
        for category in categories if isinstance(categories, list) else ():
            _add_codes(category, codes)
        titles = _titles(document, kind)
        # One search over the titles at once: the phrase holds no newline, so it cannot span two.
        titled = bool(titles) and "progress report" in "\n".join(titles).lower()
        if not titled:
            # Untitled, its codes decide: a progress report's, and not the daily note's.
            if not codes or codes & episode.not_progress_report_loinc:
                continue
            if not codes & episode.progress_report_loinc:
                continue
        ref = f"DocumentReference/{text(document.get('id'))}"
        day = index.local_day(document.get("date")) or index.local_day(
            obj(obj(document.get("context")).get("period")).get("start")
        )
        if day is None:
            reports.append(_Report(ref, None, "", None, None, None))
            continue
        authors = seq(document.get("author")) or [document.get("authenticator")]
        role, author = None, ""
        for author_ref in authors:
            role = role_of_reference(index, author_ref, day)
            author = key(author_ref) or text(obj(author_ref).get("display"))
            if role:
                break
        role_discipline = ASSISTANT_OF.get(role or "", role)
        reports.append(_Report(ref, day, author, role, discipline_named(*titles), role_discipline))
    found = record.documents = (plan_documents, reports)
    return found


def _provenance_by_target(index: Index) -> dict[str | None, list[dict]]:
    """The index's Provenance by the key of each resource it targets (each once), in Bundle
    order."""
    found = index.memo.get("episode-provenance")
    if found is not None:
        return found
    found = index.memo["episode-provenance"] = {}
    for provenance in index.by_type.get("Provenance", ()):
        for target in {index.key(t) for t in seq(provenance.get("target"))}:
            found.setdefault(target, []).append(provenance)
    return found


def _certification(
    index: Index, policy: Policy, plan: _Plan, plan_documents: list[_PlanDocument]
) -> tuple[date | None, str]:
    """The earliest date a physician/NPP signed the plan, and how it was read."""
    certifiers = policy.episode.certifiers
    found: list[tuple[date, str]] = []
    resource, key, created = plan.resource, plan.ref, plan.created
    for where, ref in [("author", resource.get("author"))] + [
        ("contributor", c) for c in seq(resource.get("contributor"))
    ]:
        if role_of_reference(index, ref, created) in certifiers:
            if created:
                found.append((created, f"{index.key(ref)} (CarePlan.{where})"))
            else:
                index.note(f"{key}: signed by a physician/NPP but undated (no CarePlan.created)")
    if index.by_type.get("Provenance"):
        for provenance in _provenance_by_target(index).get(key, ()):
            for signature in seq(provenance.get("signature")):
                signature = obj(signature)
                when = index.local_day(signature.get("when"))
                if when and role_of_reference(index, signature.get("who"), when) in certifiers:
                    found.append((when, f"{index.key(signature.get('who'))} (Provenance)"))
    for document in plan_documents:
        covers = not document.related and plan.begins is not None
        if key not in document.related and not covers:
            continue
        when = document.day
        for ref in document.authenticators:
            if when and role_of_reference(index, ref, when) in certifiers:
                found.append((when, f"{index.key(ref)} ({document.ref})"))
    if not found:
        return None, ""
    return min(found)


def _signed_orders(index: Index, policy: Policy, patient: str | None) -> list[dict]:
    """The patient's ServiceRequests a physician/NPP signed and dated, once per index."""
    memo_key = ("episode-orders", patient)
    found = index.memo.get(memo_key)
    if found is None:
        found = index.memo[memo_key] = [
            r
            for r in _of_patient(index, "ServiceRequest", patient)
            if role_of_reference(index, r.get("requester"), index.local_day(r.get("authoredOn")))
            in policy.episode.certifiers
            and index.local_day(r.get("authoredOn"))
        ]
    return found


def _order_exception(
    index: Index, policy: Policy, patient: str | None, key: str, start: date | None
) -> tuple[bool, date | None]:
    """CY2025: a signed, dated physician/NPP order, and the plan sent within 30 days."""
    orders = _signed_orders(index, policy, patient)
    if not orders or start is None:
        return False, None
    messages = index.cached(
        ("episode-messages", patient), _of_patient, index, "Communication", patient
    )
    for message in messages:
        about = {index.key(a) for a in seq(message.get("about"))}
        about |= {index.key(a) for a in seq(message.get("basedOn"))}
        sent = index.local_day(message.get("sent"))
        if key in about and sent and (sent - start).days <= policy.episode.order_exception_days:
            return True, sent
    return False, None


def _plan_of_care(
    index: Index,
    policy: Policy,
    patient: str | None,
    plan: _Plan,
    plan_documents: list[_PlanDocument],
) -> PlanOfCare:
    certified_on, certified_by = _certification(index, policy, plan, plan_documents)
    exception, sent = (False, None)
    if certified_on is None:
        exception, sent = _order_exception(index, policy, patient, plan.ref, plan.start)
    return PlanOfCare(plan.ref, plan.start, plan.end, certified_on, certified_by, exception, sent)


def _plan_order(plan: PlanOfCare) -> tuple[date, str]:
    return (plan.start or date.min, plan.ref)


def read_plans(
    index: Index, policy: Policy, patient: str | None, record: _Record, discipline: str
) -> tuple[PlanOfCare, ...]:
    """The patient's plans of care of the discipline (or of none named), earliest first. A
    plan's certification is read once per index, whichever discipline asks first."""
    plans = []
    for plan in record.plans:
        if not plan.counts or plan.discipline not in (discipline, None):
            continue
        if plan.read is None:
            plan_documents = _documents(index, policy, patient, record)[0]
            plan.read = _plan_of_care(index, policy, patient, plan, plan_documents)
        plans.append(plan.read)
    if len(plans) > 1:
        plans.sort(key=_plan_order)
    return tuple(plans)


def _report_order(report: ProgressReport) -> tuple[date, str]:
    return (report.day, report.ref)


def read_reports(
    index: Index, policy: Policy, patient: str | None, record: _Record, discipline: str
) -> tuple[ProgressReport, ...]:
    """The progress reports of the discipline (named in their titles, else by their author's
    discipline, else of any), earliest first; one without a date is noted and not counted."""
    found = []
    for report in _documents(index, policy, patient, record)[1]:
        if report.day is None:
            index.note(f"{report.ref}: a progress report without a date; not counted")
            continue
        named = report.named
        if named and named != discipline:
            continue
        role_discipline = report.role_discipline
        if not named and role_discipline in THERAPY and role_discipline != discipline:
            continue
        found.append(ProgressReport(report.ref, report.day, report.author, report.role))
    if len(found) > 1:
        found.sort(key=_report_order)
    return tuple(found)


def _unread_signers(index: Index, record: _Record, plans: tuple[PlanOfCare, ...]) -> str:
    """A signer of the plans (author, contributor, Provenance signature) whose role cannot be
    read because the record read does not hold it (a CDS prefetch, a failed read): its
    certification is then unknown, not absent."""
    keys = {p.ref for p in plans}
    refs: list[object] = []
    for plan in record.plans:
        if plan.ref in keys:
            refs += [plan.resource.get("author"), *seq(plan.resource.get("contributor"))]
    for provenance in index.by_type.get("Provenance", ()):
        if keys & {index.key(t) for t in seq(provenance.get("target"))}:
            refs += [obj(s).get("who") for s in seq(provenance.get("signature"))]
    for ref in refs:
        key = index.key(ref)
        if key and key not in index.by_key and role_of_reference(index, ref) is None:
            return key
    return ""


def _first(unread: list[Unread], *types: str) -> str:
    """Why the first thing of these types could not be read (the fetch's reading note), else
    ""."""
    return next((u.why for u in unread if u.resource in types), "")


def _sole_plan_discipline(index: Index, record: _Record, day: date) -> set[str]:
    """The visit's discipline when nothing on the visit says it (no GP/GO/GN line, no performer
    credential: Epic before charges) but every plan of care the patient has begun by that day
    is of one discipline. Said in a reading note; two disciplines decide nothing."""
    named = set()
    for plan in record.plans:
        if plan.start is not None and plan.start > day:
            continue
        if plan.discipline:
            named.add(plan.discipline)
    if len(named) != 1:
        return set()
    (discipline,) = named
    index.note(
        f"the visit's discipline is not on its lines or performers; taken as {discipline}, "
        "the discipline of the patient's plans of care"
    )
    return named


@dataclass(slots=True)
class _KnownDays:
    """What the patient's encounters say of treatment days, as far as visits have asked: every
    encounter on or before ``through`` has been asked its disciplines (a year of visits on one
    index asks about the same earlier encounters), and each discipline's days are extended as
    later visits ask, not read again."""

    encounters: list  # the patient's encounters these were read from
    # (day, position in ``encounters``, key) of each encounter with a day, earliest day first
    by_day: list[tuple[date, int, str]]
    dates: list[date]  # the days of ``by_day``, for bisecting
    asked: int = 0  # ``by_day[:asked]`` have been asked: those on or before ``through``
    through: date | None = None
    answers: dict[str, set[str]] = field(default_factory=dict)  # Encounter key -> disciplines
    # (discipline, inferred) -> the distinct days up to ``through`` that count, earliest first
    days: dict[tuple[str, bool], list[date]] = field(default_factory=dict)


def _known_days(encounters: list[tuple[float, str, date | None]]) -> _KnownDays:
    by_day = sorted(
        (when, position, key)
        for position, (_, key, when) in enumerate(encounters)
        if when is not None
    )
    return _KnownDays(encounters, by_day, [when for when, _, _ in by_day])


def _counts(answer: set[str], discipline: str, inferred: bool) -> bool:
    """Whether an encounter of these disciplines is a treatment day of the discipline (or, when
    the visit's discipline was inferred, of no discipline read)."""
    return discipline in answer or (inferred and UNKNOWN_DISCIPLINE in answer)


def _treatment_days(
    record: _Record,
    day: date,
    discipline: str,
    inferred: bool,
    encounters: list[tuple[float, str, date | None]],
    disciplines_of: Callable[[str], set[str]],
) -> tuple[date, ...]:
    """The distinct days, up to the visit's, of the encounters of the discipline (or, when the
    discipline was inferred, of no discipline read). Encounters are asked in their order, each
    once per index, and only once a visit on or after their day asks."""
    known = record.days
    if known is None or known.encounters is not encounters:
        known = record.days = _known_days(encounters)
    answers = known.answers
    if known.through is None or day > known.through:
        reached = bisect_right(known.dates, day)
        # The encounters of the days since the last visit that asked, in their order.
        new = sorted(known.by_day[known.asked : reached], key=_position)
        for _, _, key in new:
            if key not in answers:
                answers[key] = disciplines_of(key)
        known.asked, known.through = reached, day
        for (named, by_plan), days in known.days.items():
            # The new days all follow the days kept (those on or before the last ``through``).
            more = {when for when, _, key in new if _counts(answers[key], named, by_plan)}
            days += sorted(more)
    days = known.days.get((discipline, inferred))
    if days is None:
        days = known.days[discipline, inferred] = []
        for when, _, key in known.by_day[: known.asked]:
            if (not days or days[-1] != when) and _counts(answers[key], discipline, inferred):
                days.append(when)
    return tuple(days[: bisect_right(days, day)])


def _position(entry: tuple[date, int, str]) -> int:
    return entry[1]


def _lines_name(
    lines: list[BilledLine], key: str, modifiers: dict[str, str], discipline: str
) -> bool:
    """Whether a billed line of the encounter names the discipline (GP/GO/GN)."""
    for line in lines:
        if line.encounter == key:
            for modifier in line.modifiers:
                if modifiers.get(modifier) == discipline:
                    return True
    return False


def _few_days(
    policy: Policy,
    day: date,
    discipline: str,
    inferred: bool,
    encounters: list[tuple[float, str, date | None]],
    lines: list[BilledLine],
    answers: dict[str, set[str]],
    disciplines_of: Callable[[str], set[str]],
) -> tuple[date, ...]:
    """``_treatment_days`` for a patient of one or two encounters. An encounter whose billed
    lines name the discipline counts without asking ``disciplines_of`` (its answer holds what
    its lines name, and is then read without a note); the others are asked in their order,
    each once per visit (``answers``)."""
    modifiers = policy.discipline_modifiers
    days = []
    for _, key, when in encounters:
        if when is None or when > day:
            continue
        if _lines_name(lines, key, modifiers, discipline):
            days.append(when)
            continue
        answer = answers.get(key)
        if answer is None:
            answer = answers[key] = disciplines_of(key)
        if discipline in answer or (inferred and UNKNOWN_DISCIPLINE in answer):
            days.append(when)
    if len(days) == 2:
        first, second = days
        if first == second:
            return (first,)
        if second < first:
            return (second, first)
    return tuple(days)


def _certified(plans: tuple[PlanOfCare, ...]) -> bool:
    """Whether a physician/NPP certified one of the plans, or the order exception does."""
    for plan in plans:
        if plan.certified_on or plan.order_exception:
            return True
    return False


def read_episodes(
    index: Index,
    policy: Policy,
    patient: str | None,
    day: date | None,
    disciplines: set[str],
    encounters: list[tuple[float, str, date | None]],
    disciplines_of: Callable[[str], set[str]],
    lines: list[BilledLine],
) -> tuple[Episode, ...]:
    """One Episode per therapy discipline of the visit.

    ``encounters`` are the patient's (start, key, day), the same list for every visit of the
    index; ``disciplines_of`` gives the disciplines of one of them by its key, the same answer
    for a key throughout the index (it is kept), and at least those its ``lines`` (the
    patient's billed lines) name with GP/GO/GN.
    """
    if day is None:
        return ()
    # What the fetch could not read (plugin/fhir/unread.py): a search the EHR refused (HTTP
    # 400), or a type it does not serve by patient.
    refused = index.unread
    record = _record(index, patient)
    therapy = disciplines & THERAPY
    inferred = False
    if not therapy:
        therapy = _sole_plan_discipline(index, record, day)
        if not therapy:
            return ()
        inferred = True
    # A patient of one or two encounters: the days read here (none to keep for later visits).
    few = len(encounters) <= 2
    answers: dict[str, set[str]] = {}
    episodes = []
    for discipline in sorted(therapy):
        found = record.read.get(discipline)
        if found is None:
            found = record.read[discipline] = (
                read_plans(index, policy, patient, record, discipline),
                read_reports(index, policy, patient, record, discipline),
            )
        plans, reports = found
        if few:
            days = _few_days(
                policy, day, discipline, inferred, encounters, lines, answers, disciplines_of
            )
        else:
            days = _treatment_days(record, day, discipline, inferred, encounters, disciplines_of)
        unknown = history = ""
        if not plans:
            why = _first(refused, "CarePlan") if refused else ""
            unknown = f"no {discipline} plan of care could be read" + (
                f" ({why})" if why else " (none in the record read)"
            )
        elif not _certified(plans):
            # The plans' signatures may be in the Provenance the EHR would not give, or signed
            # by someone the record read does not hold.
            unsigned_why = _first(refused, "Provenance")
            unread = _unread_signers(index, record, plans)
            if unread and not unsigned_why:
                unsigned_why = f"{unread}, who signed it, is not in the record read"
            if not unsigned_why and _signed_orders(index, policy, patient):
                # A signed order without the messages: the CY2025 exception may certify it.
                unsigned_why = _first(refused, "Communication")
            if unsigned_why:
                unknown = (
                    f"the {discipline} plan of care's certification could not be read "
                    f"({unsigned_why})"
                )
        if refused:
            why = _first(refused, "Encounter", "Procedure")
            if why:
                history = f"earlier {discipline} visits could not be read ({why})"
        episodes.append(Episode(discipline, plans, reports, days, unknown, history))
    return tuple(episodes)
