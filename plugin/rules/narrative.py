"""Rules that read the 97112 narrative for what it describes: unskilled, another code, a copy."""

from __future__ import annotations

from collections.abc import Iterator

from plugin.domain import Severity
from plugin.narrative import shingles, similarity
from plugin.rules.base import Issue, rule
from plugin.rules.context import Context, DocumentedItem


def _narrative(ctx: Context, item: DocumentedItem) -> str:
    """The service's own narrative, or the visit note when the service has none."""
    return item.own_note or ctx.visit.note_text


@rule("supervision-only", Severity.ERROR, "CMS Benefit Policy Manual ch.15 §220.2 (skilled care)")
def supervision_only(ctx: Context) -> Iterator[Issue]:
    """The 97112 narrative describes activity needing no skilled therapist.

    Supervising independent or previously taught exercise is not skilled one-on-one care; the
    minutes count neither as 97112 nor as group therapy. Fires when the narrative describes
    supervision ('performed independently', 'no cues needed', 'PTA observed') and neither a
    skilled technique nor hands-on help (min A, CGA).
    Source: CMS Benefit Policy Manual ch.15 §220.2; Medicare wording on supervision quoted in
    billing-rules.md §7.
    """
    for item in ctx.documented_items:
        text = _narrative(ctx, item)
        signs = ctx.affirmed("supervision", text)
        if signs and not (ctx.has_affirmed("skilled", text) or ctx.has_affirmed("hands_on", text)):
            yield Issue(
                code=item.code,
                message=f"the {item.code} narrative describes supervision only "
                f"({', '.join(sorted(set(signs))[:3])}) and no skilled technique",
                fix=f"Bill only skilled one-on-one minutes as {item.code}; describe the skilled "
                "input, or remove the unskilled minutes",
                evidence=(item.ref,),
            )


@rule("code-selection", Severity.WARNING, "AMA CPT descriptors of 97110, 97112 and 97530")
def code_selection(ctx: Context) -> Iterator[Issue]:
    """The 97112 narrative reads as another code.

    Strengthening, endurance and range of motion read as 97110; dynamic functional tasks read
    as 97530. Fires when the narrative has more words of another code than of 97112 (balance,
    coordination, proprioception, posture).
    Source: AMA CPT descriptors; the seed guides ('Don't let habit pick the code').
    """
    for item in ctx.documented_items:
        text = _narrative(ctx, item)
        own = len(ctx.affirmed("code_97112", text))
        for other in ("code_97110", "code_97530"):
            hits = ctx.affirmed(other, text)
            if len(hits) > own:
                label = ctx.matcher.label(other)
                yield Issue(
                    code=item.code,
                    message=f"the {item.code} narrative reads as {label}: {len(hits)} such "
                    f"terms ({', '.join(sorted(set(hits))[:3])}) against {own} for {item.code}",
                    fix=f"Bill the code the documented intent supports, or describe the "
                    f"{item.code} work (balance, coordination, proprioception, posture)",
                    evidence=(item.ref,),
                )
                break


@rule(
    "cloned-note", Severity.WARNING, "CMS Program Integrity Manual ch.3 §3.3.2.1.1 (cloned notes)"
)
def cloned_note(ctx: Context) -> Iterator[Issue]:
    """The narrative repeats an earlier visit's nearly word for word.

    Word 3-gram similarity at or above the policy threshold (85%) with a note of an earlier
    visit of the same patient reads as cloned documentation, which reviewers discount.
    Source: CMS Benefit Policy Manual ch.15 §220.3 E (documentation for every treatment day);
    the seed guide notes CMS asks for the skilled components when a treatment repeats, so the
    treatment does not appear repetitive and unskilled.
    """
    if not ctx.visit.earlier_visits:
        return
    threshold = ctx.policy.cloned_similarity
    min_words = ctx.policy.cloned_min_words
    earlier_shingles: dict[str, frozenset[tuple[str, ...]]] = {}
    texts = [(item.code, item.ref, item.own_note) for item in ctx.documented_items]
    texts.append((None, ctx.visit.encounter, ctx.visit.note_text))
    seen: set[str] = set()
    for code, ref, text in texts:
        text = ctx.readable(text)  # at most its first MAX_WORDS words, as every phrase check
        if len(text.split()) < min_words or ref in seen:
            continue
        mine = shingles(text)
        for earlier in ctx.visit.earlier_visits:
            best = 0.0
            for t in earlier.texts:
                if t not in earlier_shingles:
                    earlier_shingles[t] = shingles(ctx.readable(t))
                best = max(best, similarity(mine, earlier_shingles[t]))
            if best >= threshold:
                seen.add(ref)
                what = f"the {code} note" if code else "the visit note"
                yield Issue(
                    code=code,
                    message=f"{what} is {best:.0%} the same as the note of {earlier.encounter} "
                    f"({earlier.day})",
                    fix="Write what happened in this session: today's cues, response and measures",
                    evidence=(ref, earlier.encounter),
                )
                break
