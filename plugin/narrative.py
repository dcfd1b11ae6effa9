"""Find phrases from the policy lists in clinical prose, honouring simple negation (pure, stdlib).

"no cues needed" is not cueing and "without loss of balance" is not a deficit: a match is
negated when a negation word stands within a few words before it in the same clause, or a
negating phrase ("not needed", "not required") follows it. A plan, purpose or hypothetical is
not documentation of the session either: "will add perturbation", "to improve balance" and
"perturbation next visit" count in no list (the policy's ``hypothetical`` lists).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from plugin.policy.model import PhraseList, Policy

# A colon is no break (normalise makes it a space): "Plan: add perturbation", "Cues: none".
# A clause ends at a run of punctuation or at " but ", " however ", " although ", " though ".
# Written as one character from either set first (then which set it came from), so the regex
# engine can skip straight to the candidate characters: the same splits as
# r"[.;!?,\n()\[\]]+|\s(?:but|however|although|though)\s", about 1.7 times faster.
_BREAKS = r".;!?,\n()\[\]"
_CLAUSE_SPLIT = re.compile(
    rf"[{_BREAKS}\s](?:(?<=[{_BREAKS}])[{_BREAKS}]*|(?<=\s)(?:but|however|although|though)\s)"
)
HYPOTHETICAL = "hypothetical"  # list: phrases making the words just after them a plan or purpose
HYPOTHETICAL_AFTER = "hypothetical_after"  # list: phrases making the clause before them a plan
GOAL = "goal_statement"  # list: phrases opening a goal statement, which runs to its sentence's end
GOAL_OUTCOME = "goal_outcome"  # list: words beside a goal phrase that report its result instead
_SENTENCE_END = re.compile(r"[.;!?\n]")
_NON_WORD = re.compile(r"[^a-z0-9* ]+")
_SPACES = re.compile(r"\s+")
_GAP = r"[^\S\n]+"  # spaces inside a phrase; a newline is a clause break, never crossed
_SYMBOLS = re.compile(r"[^a-z0-9\s.;!?,()\[\]]")  # any other character reads as a space

# The most of one text the phrase lists read. A visit note of several pages is a few thousand
# words (about 7 characters each); past these limits a text is a paste or an export, and reading
# all of it would let one note buy work without bound (a 2 MiB note is allowed in). The rest is
# not read, and the review says so in a reading note (plugin.rules.engine).
MAX_WORDS = 20_000
MAX_CHARS = 200_000
# The most the rules read of all the texts of one review together (its notes, reasons and the
# earlier visits' notes compared for cloning): a text is read while less than this has been
# read, so a review reads less than MAX_REVIEW_CHARS + MAX_CHARS. Texts after that are not read,
# and the review says so: one visit buys this much work at most, however many notes it has.
MAX_REVIEW_CHARS = 5 * MAX_CHARS


def readable_part(text: str) -> str:
    """The beginning of a text that the phrase lists read: at most MAX_WORDS words and
    MAX_CHARS characters, cut between words; the text itself when it is within both."""
    if len(text) < 2 * MAX_WORDS:  # too short to hold MAX_WORDS words: the common case
        return text
    head = text[:MAX_CHARS]
    if len(text) > MAX_CHARS and not text[MAX_CHARS].isspace() and not head[-1].isspace():
        kept = head.rsplit(None, 1)  # the word cut in two is left out
        head = kept[0] if len(kept) == 2 else ""
    words = head.split(None, MAX_WORDS)  # the last item is the rest past MAX_WORDS words
    if len(words) > MAX_WORDS:
        head = head[: len(head) - len(words[-1])]
    return head if len(head) < len(text) else text


def normalise(text: str) -> str:
    """Lower-case, punctuation kept only as clause breaks, other symbols ("Plan:", "sit<>stand",
    "w/o", "VC/TC", "A-P") as spaces; an apostrophe joins its word ("pt's")."""
    return _SYMBOLS.sub(" ", text.lower().replace("'", ""))


def _word_pattern(word: str) -> str:
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"[a-z0-9]*"
    return re.escape(word)


def _alternatives(part: str) -> str:
    alts = []
    for alt in part.split("|"):
        words = _SPACES.sub(" ", _NON_WORD.sub(" ", alt)).strip().split(" ")
        if words and words[0]:
            alts.append(_GAP.join(_word_pattern(w) for w in words))
    return "(?:" + "|".join(alts) + ")"


def phrase_regex(phrase: str) -> str:
    """Translate one phrase entry of the policy syntax into a regular expression."""
    near = re.fullmatch(r"(.+?)\s+~(\d+)\s+(.+)", phrase.strip())
    if near:
        left, gap, right = near.groups()
        return rf"{_alternatives(left)}(?:{_GAP}[a-z0-9]+){{0,{gap}}}{_GAP}{_alternatives(right)}"
    return _alternatives(phrase)


def _first_letters(phrase: str) -> set[str]:
    left = re.split(r"\s+~\d+\s+", phrase.strip(), maxsplit=1)[0]
    words = (_NON_WORD.sub(" ", alt).split() for alt in left.split("|"))
    return {w[0][0] for w in words if w}


@lru_cache(maxsize=64)
def _compiled(phrases: tuple[str, ...]) -> re.Pattern[str]:
    body = "|".join(f"(?:{phrase_regex(p)})" for p in phrases if p.strip())
    # Only words starting with a letter some phrase starts with are tried (about 20% faster).
    letters = re.escape("".join(sorted(set().union(*map(_first_letters, phrases)))))
    return re.compile(rf"\b(?=[{letters}])(?:{body})\b" if letters else rf"\b(?:{body})\b")


def _no_spans(text: str) -> tuple[tuple[int, int], ...]:
    return ()


def _span_finder(policy: Policy, name: str) -> Callable[[str], tuple[tuple[int, int], ...]]:
    """Where list ``name``'s pattern matches a text, in order; memoised by the text alone (every
    list asks). Not by (pattern, text): hashing a compiled pattern hashes its whole code, about
    1.6 us for the plan list, on every lookup."""
    plist = policy.phrase_lists.get(name)
    if not plist or not plist.phrases:
        return _no_spans
    pattern = _compiled(plist.phrases)

    @lru_cache(maxsize=256)
    def spans(text: str) -> tuple[tuple[int, int], ...]:
        return tuple(m.span() for m in pattern.finditer(text))

    return spans


_TOKEN = re.compile(r"\S+")  # a word as str.split() sees it


class _Scan:
    """The facts a match's discounting needs, for the matches of one text visited left to right.

    Every position here only moves forward, so all the matches of one text cost time linear in
    its length: the clause a match lies in (its newlines searched once), the plan phrase that
    ends nearest before it, the after-phrase that follows it. The plain way (for each match,
    every plan phrase before it, each with the words between counted by slicing) was cubic in
    one long clause: 26 s for a 20 KB note of "will balance ".
    """

    __slots__ = (
        "text", "clause_start", "clause_end", "_searched", "_before", "_after", "_gap",
        "_b", "_b_end", "_a", "_reach_of", "_reach",
    )  # fmt: skip

    def __init__(
        self,
        text: str,
        before: tuple[tuple[int, int], ...],
        after: tuple[tuple[int, int], ...],
        gap: int,
    ) -> None:
        self.text = text
        self.clause_start = 0  # where the current match's clause starts
        self.clause_end = -1  # the newline ending it (-1: the text's end)
        self._searched = 0  # text[:_searched] has been searched for newlines going back
        self._before, self._after, self._gap = before, after, gap
        self._b = 0  # plan phrases ending at or before the current match's start
        self._b_end = 0  # plan phrases ending before the current match's end
        self._a = 0  # after-phrases starting before the current match's end
        self._reach_of = -1  # the plan phrase end whose reach is known
        self._reach = 0

    def move_to(self, start: int, end: int) -> None:
        """Go to the match text[start:end] (after every match visited before it)."""
        text = self.text
        newline = text.rfind("\n", self._searched, start)
        if newline >= 0:
            self.clause_start = newline + 1
        self._searched = max(self._searched, start)
        if self.clause_end < end:  # a newline before this match's end is not its clause's end
            self.clause_end = text.find("\n", end)
            if self.clause_end < 0:
                self.clause_end = len(text)
        before = self._before
        while self._b < len(before) and before[self._b][1] <= start:
            self._b += 1
        while self._b_end < len(before) and before[self._b_end][1] < end:
            self._b_end += 1
        after = self._after
        while self._a < len(after) and after[self._a][0] < end:
            self._a += 1

    def _within_gap(self, p_end: int, start: int) -> bool:
        """Whether text[p_end:start] holds at most ``gap`` words: the (gap+1)th word from
        p_end, found once per plan phrase, starts at or after ``start``."""
        if self._reach_of != p_end:
            self._reach_of = p_end
            self._reach = len(self.text)
            for count, word in enumerate(_TOKEN.finditer(self.text, p_end)):
                if count == self._gap:
                    self._reach = word.start()
                    break
        return self._reach >= start

    def is_hypothetical(self, start: int, end: int) -> bool:
        """Whether a plan phrase ends within the gap before the match or ends with it (in its
        clause), or an after-phrase follows it in its clause."""
        before = self._before
        if self._b_end < len(before):  # the plan phrase ending with the match ("to improve")
            p_start, p_end = before[self._b_end]
            if p_end == end and p_start >= self.clause_start:
                return True
        if self._b:  # the plan phrase ending nearest before it: fewest words between
            p_start, p_end = before[self._b - 1]
            if p_start >= self.clause_start and self._within_gap(p_end, start):
                return True
        if self._a < len(self._after):
            return self._after[self._a][0] < self.clause_end
        return False


@dataclass(frozen=True, slots=True)
class Hit:
    phrase: str  # the words matched
    negated: bool  # negated, or a plan or purpose: the hit does not count


class PhraseMatcher:
    """Match the policy's phrase lists against text; one matcher per Policy."""

    def __init__(self, policy: Policy) -> None:
        self._lists = policy.phrase_lists
        self._window = policy.negation_window
        self._pre = policy.pre_negation
        post = "|".join(phrase_regex(p) for p in policy.post_negation)
        self._post = re.compile(rf"\s*(?:(?:were|was|are|is|be|been)\s+)?(?:{post})\b")
        # A plan or purpose phrase ends a few words before a hit, or the hit ends the phrase
        # ("to improve" holds the response word "improve"); an after-phrase follows the hit.
        self._plan_gap = max(self._window - 1, 0)
        self._plan_before = _span_finder(policy, HYPOTHETICAL)
        self._plan_after = _span_finder(policy, HYPOTHETICAL_AFTER)
        self._patterns: dict[str, re.Pattern[str]] = {}  # by list name, compiled when first used
        self._goals = _span_finder(policy, GOAL)
        self._goal_outcomes = _span_finder(policy, GOAL_OUTCOME)
        self._goal_words = _last_words(policy.phrase_lists.get(GOAL))

    def clauses(self, text: str) -> list[str]:
        """The text's readable part (``readable_part``) normalised, as one string whose clause
        breaks are newlines.

        Kept as a one-item list so callers can cache it; each phrase list is then matched
        once over the whole text, and negation looks only inside the hit's own clause.
        """
        text = readable_part(text)
        return ["\n".join(c for c in _CLAUSE_SPLIT.split(normalise(text)) if c.strip())]

    def _matches(self, name: str, clauses: list[str]) -> Iterator[tuple[str, bool]]:
        """Each match of list ``name`` in the clauses, in order: its words and whether it is
        discounted (negated, or a plan or purpose)."""
        plist: PhraseList | None = self._lists.get(name)
        if plist is None or not plist.phrases:
            return
        pattern = self._patterns.get(name)
        if pattern is None:
            pattern = self._patterns[name] = _compiled(plist.phrases)
        for clause in clauses:
            scan = None  # made at the first match: most texts match most lists nowhere
            for m in pattern.finditer(clause):
                if scan is None:
                    before, after = self._plan_before(clause), self._plan_after(clause)
                    scan = _Scan(clause, before, after, self._plan_gap)
                start, end = m.span()
                scan.move_to(start, end)
                yield m.group(0), self._discounted(plist, scan, start, end)

    def hits(self, name: str, clauses: list[str]) -> list[Hit]:
        """Every match of list ``name`` in the clauses, each marked negated or not."""
        return list(self.each_hit(name, clauses))

    def each_hit(self, name: str, clauses: list[str]) -> Iterator[Hit]:
        """The matches of ``hits`` one at a time, for a caller that may stop early."""
        for words, negated in self._matches(name, clauses):
            yield Hit(_SPACES.sub(" ", words), negated)

    def has_affirmed(self, name: str, clauses: list[str]) -> bool:
        """Whether list ``name`` has a match that is not negated (stops at the first)."""
        return any(not negated for _, negated in self._matches(name, clauses))

    def affirmed(self, name: str, clauses: list[str]) -> list[str]:
        """The phrases of list ``name`` found and not negated."""
        return [
            _SPACES.sub(" ", words)
            for words, negated in self._matches(name, clauses)
            if not negated
        ]

    def _discounted(self, plist: PhraseList, scan: _Scan, start: int, end: int) -> bool:
        """Whether the match scan.text[start:end] does not count: negated (negatable lists
        only), or inside a plan, purpose or hypothetical (every list)."""
        if plist.negatable and self._is_negated(scan, start, end):
            return True
        return scan.is_hypothetical(start, end)

    def _is_negated(self, scan: _Scan, start: int, end: int) -> bool:
        """A negation word among the few words before the match in its clause (80 characters
        at most are looked at), or a negating phrase just after it."""
        text = scan.text
        before = text[max(scan.clause_start, start - 80) : start].split()[-self._window :]
        if any(w in self._pre for w in before):
            return True
        return bool(self._post.match(text, end, scan.clause_end))

    def label(self, name: str) -> str:
        plist = self._lists.get(name)
        return plist.label if plist and plist.label else name

    def without_goals(self, text: str) -> str:
        """The text normalised, each goal statement left out: from a phrase of the goal list to
        the end of its sentence ("Goal: ambulate community distances without loss of balance in
        6 weeks" states no response, technique or deficit of the session). A goal phrase with a
        result word just before or after it ("goal met", "met STG 1") is kept: it reports.
        A text holding none of the words a goal phrase ends with is returned as it is (most
        notes: the phrase lists normalise it when they read it). Linear in the text: the
        sentence ends searched never overlap, and each goal phrase looks only at the result
        words nearest before and after it."""
        lowered = text.lower()
        if not any(word in lowered for word in self._goal_words):
            return text
        norm = normalise(text)
        goals = self._goals(norm)
        if not goals:
            return norm
        outcomes = self._goal_outcomes(norm)
        starts = [o_start for o_start, _ in outcomes]
        kept, at = [], 0
        for start, end in goals:
            if start < at or _beside(norm, outcomes, starts, start, end):
                continue
            stop = _SENTENCE_END.search(norm, end)
            kept.append(norm[at:start])
            at = stop.start() if stop else len(norm)
        kept.append(norm[at:])
        return "".join(kept)


def _last_words(plist: PhraseList | None) -> tuple[str, ...]:
    """The words a match of the list can end with (each phrase's last alternatives, '*' and
    '~N' read as the syntax says): a text holding none of them as a substring has no match."""
    if plist is None:
        return ()
    words = set()
    for phrase in plist.phrases:
        right = re.split(r"\s+~\d+\s+", phrase.strip())[-1]
        for alternative in right.split("|"):
            found = _NON_WORD.sub(" ", alternative.replace("*", " ")).split()
            if found:
                words.add(found[-1])
    return tuple(sorted(words))


# How far (in characters) a result word may stand from a goal phrase and still be read as its
# result: a few words at most, so no word count ever slices more than this.
_BESIDE_CHARS = 40


def _beside(
    text: str, spans: tuple[tuple[int, int], ...], starts: list[int], start: int, end: int
) -> bool:
    """Whether one of the (sorted, non-overlapping) spans ends within one word before
    text[start:end] or starts within two words after it."""
    after = bisect.bisect_left(starts, end)
    if after < len(spans):
        o_start = spans[after][0]
        if o_start - end <= _BESIDE_CHARS and len(text[end:o_start].split()) <= 2:
            return True
    before = bisect.bisect_left(starts, start) - 1
    if before >= 0:
        o_end = spans[before][1]
        gap = start - o_end
        if 0 <= gap <= _BESIDE_CHARS and len(text[o_end:start].split()) <= 1:
            return True
    return False


# The words of a lower-cased text as ``normalise`` and then _NON_WORD leave them: the runs of
# letters and digits (every other character reads as a space), found in one pass.
_WORD_RUNS = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1024)
def shingles(text: str, size: int = 3) -> frozenset[tuple[str, ...]]:
    """Word n-grams of a text, for near-duplicate detection (memoised: each visit of a patient
    compares its notes with the same earlier notes). The words are those of the normalised text
    (an apostrophe joins its word); the n-grams are made by ``zip`` over the word list shifted
    0..size-1 places, in C, which halves the cost of one made by slicing."""
    words = _WORD_RUNS.findall(text.lower().replace("'", ""))
    return frozenset(zip(*(words[k:] for k in range(size)), strict=False))


def similarity(a: frozenset, b: frozenset) -> float:
    """Jaccard similarity of two shingle sets (0 when either is empty); the union's size is
    counted, not built."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)
