"""What each finding read, in words people check against the chart (contract section 5,
``quotes``): the note's sentence with the matched words marked, the times and values read, or,
for something missing, the part of the note that was searched.

Worked out after the rules ran, from the same Context, for the findings only: the rules stay as
they are, and a visit without findings costs nothing here. Pure: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from plugin.domain import Finding, Quote, Service
from plugin.narrative import MAX_CHARS
from plugin.rules.base import hhmm
from plugin.rules.context import Context, DocumentedItem

LIMIT = 200  # characters of one quote
# Marks kept per sentence: a 200-character quote shows no more, and a sentence of thousands of
# hits (a crafted note) must not cost a check of each new mark against every earlier one.
MAX_MARKS = 12
MAX_QUOTES = 3  # quotes of one finding
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")

# Rules about a phrase list the documentation lacks -> that list.
MISSING = {
    "doc-no-deficit": "deficit",
    "doc-no-skilled-intervention": "skilled",
    "doc-no-patient-response": "response",
}
# Rules about phrases the narrative has -> the lists whose matches it read.
PRESENT = {
    "supervision-only": ("supervision",),
    "code-selection": ("code_97110", "code_97530"),
}
TIME_RULES = frozenset(
    {
        "units-exceed-time",
        "units-under-billed",
        "under-8-minutes",
        "missing-minutes",
        "daily-unit-cap",
        "untimed-units-exceed",
        "minutes-overlap",
        "group-overlap",
        "untimed-overlap",
        "unsupported-distinct-modifier",
        "missing-assistant-modifier",
        "total-time-mismatch",
    }
)


def sentences(text: str) -> Iterator[tuple[int, str]]:
    """The sentences (or lines) of a text with where each starts, stripped."""
    for m in _SENTENCE.finditer(text):
        raw = m.group(0)
        body = raw.strip()
        if body:
            yield m.start() + raw.index(body), body


def _word(word: str) -> str:
    # normalise drops apostrophes ("pt's" -> "pts"): let one stand between any two letters
    return "'?".join(re.escape(ch) for ch in word)


def locate(sentence: str, words: str, start: int = 0) -> tuple[int, int] | None:
    """Where the matched ``words`` (normalised: lower case, symbols as spaces) stand in the
    sentence as written, at or after ``start``; None if they cannot be found."""
    parts = [p for p in re.split(r"[^a-z0-9]+", words.lower()) if p]
    if not parts:
        return None
    pattern = re.compile(r"\b" + r"[^a-z0-9]+".join(map(_word, parts)) + r"\b", re.IGNORECASE)
    found = pattern.search(sentence, start) or pattern.search(sentence)
    return found.span() if found else None


def clip(text: str, marks: list[tuple[int, int]]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """At most LIMIT characters of a sentence, around its first mark, marks moved to match."""
    if len(text) <= LIMIT:
        return text, tuple(marks)
    first = marks[0][0] if marks else 0
    start = max(0, min(first - LIMIT // 4, len(text) - (LIMIT - 2)))
    lead = "…" if start else ""
    body = text[start : start + LIMIT - len(lead) - 1]
    tail = "…" if start + len(body) < len(text) else ""
    shift = len(lead) - start
    kept = tuple(
        (a + shift, min(b + shift, len(lead) + len(body)))
        for a, b in marks
        if a >= start and a < start + len(body)
    )
    return lead + body + tail, kept


def _marked(ctx: Context, text: str, lists: tuple[str, ...], negated: bool | None):
    """Where the lists' matches stand in the text, in order and not overlapping: only the
    affirmed ones (negated False), only the discounted ones (True). One scan of the whole text
    per list (its clauses the rules already made), each match then found in the text as
    written."""
    spans = []
    for name in lists:
        at, kept = 0, 0
        for hit in ctx.matcher.each_hit(name, ctx.clauses(text)):
            if negated is not None and hit.negated != negated:
                continue
            span = locate(text, hit.phrase, at)
            if span:
                spans.append(span)
                at = span[1]
                kept += 1
                if kept >= MAX_QUOTES * MAX_MARKS:  # more than the quotes could show
                    break
    marks: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if not marks or start >= marks[-1][1]:
            marks.append((start, end))
    return marks


def _texts(ctx: Context, item: DocumentedItem) -> list[tuple[str, str, str | None]]:
    """(text, where, source) of what the rules read for a service, in reading order."""
    out = []
    if item.own_note:
        out.append((item.own_note, f"the {item.code} note", item.ref))
    for reason in item.texts[1:-1]:
        if reason:
            out.append((reason, "the reason for the service", None))
    if ctx.visit.note_text:
        out.append((ctx.visit.note_text, "the visit note", None))
    return out


def _phrase_quotes(ctx, item, lists, kind, negated) -> list[Quote]:
    """Up to MAX_QUOTES sentences with the lists' matches marked, from the first MAX_CHARS
    characters of the texts read (the phrase checks read no further into a note)."""
    found = []
    budget = MAX_CHARS
    for text, where, source in _texts(ctx, item):
        text = text[:budget]
        budget -= len(text)
        marks = _marked(ctx, text, lists, negated)
        at = 0  # the first mark not yet behind the sentences read
        for start, sentence in sentences(text) if marks else ():
            end = start + len(sentence)
            while at < len(marks) and marks[at][0] < start:
                at += 1
            inside = []
            while at < len(marks) and marks[at][1] <= end and len(inside) < MAX_MARKS:
                inside.append((marks[at][0] - start, marks[at][1] - start))
                at += 1
            if inside:
                body, kept = clip(sentence, inside)
                found.append(Quote(kind, body, tuple(kept), where, source))
                if len(found) >= MAX_QUOTES:
                    return found
            if at >= len(marks):
                break
        if budget <= 0:
            break
    return found


def _item(ctx: Context, finding: Finding) -> DocumentedItem | None:
    """The documented item a finding names in its evidence, else the first of its code."""
    found = ctx.memo.get("quotes: items")
    if found is None:
        found = ctx.memo["quotes: items"] = _items_by_ref_and_code(ctx)
    by_ref, first_of_code = found
    for ref in finding.evidence:
        item = by_ref.get((finding.code, ref))
        if item is not None:
            return item
    return first_of_code.get(finding.code)


def _items_by_ref_and_code(ctx: Context):
    """The documented items by (code, ref), and the first of each code: made once a review,
    so that a visit of 10,000 Procedures is not searched once per finding."""
    by_ref: dict[tuple[str | None, str], DocumentedItem] = {}
    first_of_code: dict[str | None, DocumentedItem] = {}
    for item in ctx.documented_items:
        by_ref.setdefault((item.code, item.ref), item)
        first_of_code.setdefault(item.code, item)
    return by_ref, first_of_code


def _missing(ctx: Context, finding: Finding) -> list[Quote]:
    """What was read and did not count (negated, a plan), else what was searched."""
    item = _item(ctx, finding)
    if item is None:
        return []
    discounted = _phrase_quotes(ctx, item, (MISSING[finding.rule],), "discounted", True)
    if discounted:
        return discounted
    searched = []
    for text, where, source in _texts(ctx, item)[:2]:
        body, _ = clip(" ".join(text.split()), [])
        searched.append(Quote("searched", body, (), where, source))
    return searched


def _present(ctx: Context, finding: Finding) -> list[Quote]:
    item = _item(ctx, finding)
    return _phrase_quotes(ctx, item, PRESENT[finding.rule], "read", False) if item else []


def _cloned(ctx: Context, finding: Finding) -> list[Quote]:
    """The longest sentence of the note that the earlier visit's note also has."""
    earlier = {
        " ".join(s.lower().split())
        for visit in ctx.visit.earlier_visits
        if visit.encounter in finding.evidence
        for text in visit.texts
        for _, s in sentences(text)
    }
    item = _item(ctx, finding) if finding.code else None
    text = item.own_note if item and item.own_note else ctx.visit.note_text
    shared = [s for _, s in sentences(text) if " ".join(s.lower().split()) in earlier]
    if not shared:
        return []
    body, _ = clip(max(shared, key=len), [])
    where = f"the {finding.code} note" if item and item.own_note else "the visit note"
    return [Quote("read", body, (), f"{where}, word for word in the earlier note")]


def _times(service: Service) -> str:
    if service.start and service.end:
        return f"{service.code} {hhmm(service.start)}-{hhmm(service.end)}"
    if service.minutes is not None:
        return f"{service.code} {service.minutes} min ({service.minutes_from})"
    return f"{service.code} no minutes documented"


def _values(ctx: Context, finding: Finding) -> list[Quote]:
    """The times read (each service's period, or its minutes and where they came from), the
    units billed and, for the total, the treatment time."""
    refs = set(finding.evidence)
    services = [s for s in ctx.visit.services if s.ref in refs]
    if not services and finding.code:
        services = list(ctx.services_by_code.get(finding.code, []))
    if finding.rule == "total-time-mismatch":
        services = list(ctx.visit.services)
    parts = [_times(s) for s in services]
    if finding.code and not any(s.code == finding.code for s in services):
        parts.append(f"{finding.code}: no intervention with its minutes")
    codes = sorted({s.code for s in services} | ({finding.code} if finding.code else set()))
    billed = [f"billed {ctx.billed_units[c]} x {c}" for c in codes if ctx.billed_units.get(c)]
    if finding.rule == "total-time-mismatch" and ctx.visit.total_minutes is not None:
        billed.append(f"total treatment time {ctx.visit.total_minutes} min")
    text = ", ".join(parts + billed)
    return [Quote("values", clip(text, [])[0])] if text else []


def _goals(ctx: Context, finding: Finding) -> list[Quote]:
    """The goals read, each with what it lacks."""
    refs = set(finding.evidence)
    goals = [g for g in ctx.visit.goals if g.ref in refs] or list(ctx.visit.goals)
    if not goals:
        return [Quote("values", "no Goal for the patient")]
    found = []
    for goal in goals[:MAX_QUOTES]:
        state = ", ".join(
            (
                "active" if goal.active else "not active",
                "measurable" if goal.measurable else "no measurable target",
            )
        )
        found.append(Quote("read", clip(f"{goal.text} ({state})", [])[0], (), "a goal", goal.ref))
    return found


def _notes_searched(ctx: Context, finding: Finding) -> list[Quote]:
    if not ctx.visit.note_text:
        return []
    body, _ = clip(" ".join(ctx.visit.note_text.split()), [])
    return [Quote("searched", body, (), "the visit note")]


QUOTERS: dict[str, Callable[[Context, Finding], list[Quote]]] = {
    **{rule: _missing for rule in MISSING},
    **{rule: _present for rule in PRESENT},
    **{rule: _values for rule in TIME_RULES},
    "cloned-note": _cloned,
    "doc-no-total-time": _notes_searched,
    "doc-no-functional-goal": _goals,
}


def quotes_for(ctx: Context, finding: Finding) -> tuple[Quote, ...]:
    """The quotes of one finding (none for a rule whose evidence is only references)."""
    quoter = QUOTERS.get(finding.rule)
    return tuple(quoter(ctx, finding)[:MAX_QUOTES]) if quoter else ()
