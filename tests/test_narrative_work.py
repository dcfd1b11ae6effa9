"""The phrase check's work: linear in the text, bounded per note and per review (security
review 2, MEDIUM: a 20 KB note of "will balance " took 26 s), with the same results as the
plain definition of negation and plans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin import narrative
from plugin.domain import Service, Visit
from plugin.narrative import (
    MAX_CHARS,
    MAX_REVIEW_CHARS,
    MAX_WORDS,
    PhraseMatcher,
    readable_part,
)
from plugin.policy import load_policy
from plugin.rules.engine import review
from tests.work import CountedText, Work


@pytest.fixture(scope="module")
def matcher():
    return PhraseMatcher(load_policy())


def _plain_discounted(matcher, plist, text: str, start: int, end: int) -> bool:
    """Negation and plans as first written: every plan phrase before the match looked at, the
    words between counted by slicing (cubic in one long clause, but plainly right)."""
    clause_start = text.rfind("\n", 0, start) + 1
    clause_end = text.find("\n", end)
    if plist.negatable:
        before = text[max(clause_start, start - 80) : start].split()[-matcher._window :]
        if any(w in matcher._pre for w in before):
            return True
        if matcher._post.match(text, end, clause_end if clause_end >= 0 else len(text)):
            return True
    for p_start, p_end in matcher._plan_before(text):
        if p_start >= end:
            break
        if p_start >= clause_start and (
            p_end == end or (p_end <= start and len(text[p_end:start].split()) <= matcher._plan_gap)
        ):
            return True
    for p_start, _ in matcher._plan_after(text):
        if p_start >= end:
            return clause_end < 0 or p_start < clause_end
    return False


_WORDS = (
    "will to improve balance no not needed cues verbal next visit if tolerated loss of impaired "
    "r o pt a stance foam were plan goal tactile ntv"
).split()
_SEPARATORS = [" ", "  ", "\n", ", ", ". ", "\t", "\xa0", " but ", "(", "balance"]
_PIECES = st.lists(st.sampled_from([w + " " for w in _WORDS] + _SEPARATORS), max_size=40).map(
    "".join
)


@given(_PIECES)
@settings(max_examples=1500, deadline=None)
def test_every_list_is_discounted_as_the_plain_definition_says(text):
    matcher = PhraseMatcher(load_policy())
    clause = matcher.clauses(text)[0]
    for name, plist in matcher._lists.items():
        if not plist.phrases:
            continue
        pattern = narrative._compiled(plist.phrases)
        plain = [
            (m.group(0), _plain_discounted(matcher, plist, clause, *m.span()))
            for m in pattern.finditer(clause)
        ]
        assert list(matcher._matches(name, [clause])) == plain, name


def _work(matcher, text: str) -> int:
    with Work() as work:
        clauses = [CountedText(matcher.clauses(text)[0], work)]
        for name in matcher._lists:
            matcher.hits(name, clauses)
    return work.total


@pytest.mark.parametrize(
    "unit",
    [
        "will balance ",  # a plan phrase before every hit, in one clause
        "to improve balance ",  # a plan phrase ending with a hit
        "no cues needed ",  # negation before and after
        "balance next visit ",  # a plan phrase after every hit
        "balance" + " " * 40,  # long runs of spaces between hits
    ],
)
def test_the_phrase_check_does_linear_work(matcher, unit):
    """Four times the text is at most about four times the work (it was 15-63 times)."""
    _work(matcher, unit * 10)  # patterns compiled, caches filled: not the text's work
    small, large = _work(matcher, unit * 100), _work(matcher, unit * 400)
    assert large <= 4.5 * small, (small, large)


def test_readable_part_keeps_short_texts_and_cuts_long_ones_between_words():
    note = "tandem stance on foam with verbal cues. "
    assert readable_part(note) is note
    long = note * (MAX_WORDS // 7 + 10)
    head = readable_part(long)
    assert len(head.split()) == MAX_WORDS and long.startswith(head)
    assert long[len(head)] != " " or head.endswith(" ")  # no word cut in two
    wide = ("x" * 99 + " ") * (MAX_CHARS // 100 + 50)  # few words, many characters
    head = readable_part(wide)
    assert len(head) <= MAX_CHARS and head.split() == ["x" * 99] * len(head.split())
    assert readable_part("y" * (MAX_CHARS + 1)) == ""  # one endless word is not read


def _visit(note_text: str, *notes: str) -> Visit:
    services = tuple(
        Service(code="97112", ref=f"Procedure/p{n}", minutes=15, note=note)
        for n, note in enumerate(notes)
    )
    return Visit(
        encounter="Encounter/e1",
        patient="Patient/p1",
        day=None,
        total_minutes=None,
        services=services,
        note_text=note_text,
    )


def test_a_note_over_the_limit_is_read_in_part_and_the_review_says_so():
    policy = load_policy()
    filler = "will balance " * (MAX_WORDS // 2 + 100)
    # What is past the limit is not read: the skilled cue at the end counts for nothing.
    late = review(_visit(filler + " tactile cues for weight shift", ""), policy)
    early = review(_visit("tactile cues for weight shift. " + filler, ""), policy)
    assert "doc-no-skilled-intervention" in {f.rule for f in late.findings}
    assert "doc-no-skilled-intervention" not in {f.rule for f in early.findings}
    for report in (late, early):
        (note,) = report.visit.notes
        assert note.startswith("Encounter/e1: its visit note was checked only in its beginning")
    assert review(_visit("tactile cues for weight shift", ""), policy).visit.notes == ()


def test_a_review_reads_at_most_its_budget_of_notes():
    """Each note within its own limit, but more of them than a review reads: notes are read
    until the review's budget is spent; the rest are not, each named in a reading note."""
    policy = load_policy()
    note = "impaired balance, tactile cues. " * (MAX_WORDS // 5 - 1)  # under both limits
    count = MAX_REVIEW_CHARS // len(note) + 4
    report = review(_visit("", *(f"{n} {note}" for n in range(count))), policy)
    read = -(-MAX_REVIEW_CHARS // (len(note) + 2))  # the last one read crosses the budget
    assert [n.split(" (")[0] for n in report.visit.notes] == [
        f"Procedure/p{n}: its note was not checked" for n in range(read, count)
    ]
