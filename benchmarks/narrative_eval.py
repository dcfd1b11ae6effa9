"""Precision and recall of the narrative rules on a labelled set of synthetic note sentences.

Each row of tests/data/narrative_labelled.csv is (sentence, rule, expected, code): whether
``rule`` should fire if the sentence were the whole documentation of ``code`` (97112 when the
column is empty). Each sentence becomes a visit and the real rule is run on it: for the 97112
rules, one 97112 Procedure whose note is the sentence (no visit note, no reason Condition); for
reevaluation-not-indicated, one re-evaluation Procedure (97164 or 97168) whose note is the
sentence; for untimed-undocumented, the untimed code billed with no Procedure and the sentence
as the visit note. A rule firing is the positive class: precision is the share of firings that
were expected, recall the share of expected firings that happened.

    python benchmarks/narrative_eval.py            # scores, misses and time per sentence
    python benchmarks/narrative_eval.py --medspacy # also medspaCy ConText for negation (optional)
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.domain import BilledLine, Service, Visit  # noqa: E402
from plugin.narrative import _SYMBOLS, HYPOTHETICAL, PhraseMatcher, _compiled  # noqa: E402
from plugin.policy import load_policy  # noqa: E402
from plugin.policy.model import Policy  # noqa: E402
from plugin.rules import get_rule  # noqa: E402
from plugin.rules.context import Context  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "narrative_labelled.csv"
RULES = (
    "doc-no-deficit",
    "doc-no-skilled-intervention",
    "doc-no-patient-response",
    "supervision-only",
    "code-selection",
    "reevaluation-not-indicated",
    "untimed-undocumented",
)
DEFAULT_CODE = "97112"
RULES_97112 = RULES[:5]  # the rules that read the 97112 narrative


@dataclass(frozen=True, slots=True)
class Example:
    sentence: str
    rule: str
    fires: bool
    code: str = DEFAULT_CODE


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    misses: list[tuple[str, bool]] = field(default_factory=list)  # (sentence, expected)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def add(self, sentence: str, expected: bool, fired: bool) -> None:
        if expected and fired:
            self.tp += 1
        elif expected:
            self.fn += 1
            self.misses.append((sentence, True))
        elif fired:
            self.fp += 1
            self.misses.append((sentence, False))
        else:
            self.tn += 1


def load_labelled(path: Path = DATA) -> list[Example]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    examples = []
    for n, row in enumerate(rows, start=2):
        if row["rule"] not in RULES or row["expected"] not in ("fires", "silent"):
            raise ValueError(f"{path.name} line {n}: unknown rule or expected value")
        code = (row.get("code") or "").strip() or DEFAULT_CODE
        examples.append(Example(row["sentence"], row["rule"], row["expected"] == "fires", code))
    return examples


def visit_of(sentence: str, rule_id: str = "", code: str = DEFAULT_CODE) -> Visit:
    """A visit whose whole documentation of ``code`` is the sentence: the note of its one
    Procedure, or, for untimed-undocumented, the visit note beside the billed code alone."""
    if rule_id == "untimed-undocumented":
        line = BilledLine("Claim/c1#1", code, 1, frozenset({"GP"}))
        return Visit(
            encounter="Encounter/e1",
            patient=None,
            day=None,
            total_minutes=30,
            billed=(line,),
            note_text=sentence,
        )
    service = Service(ref="Procedure/p1", code=code, minutes=20, note=sentence)
    return Visit(
        encounter="Encounter/e1", patient=None, day=None, total_minutes=20, services=(service,)
    )


def rule_judge(policy: Policy | None = None) -> Callable[..., bool]:
    """Whether the real rule fires on the sentence (through the rule's own Context)."""
    policy = policy or load_policy()
    matcher = PhraseMatcher(policy)

    def fires(rule_id: str, sentence: str, code: str = DEFAULT_CODE) -> bool:
        ctx = Context(visit_of(sentence, rule_id, code), policy, matcher)
        return any(True for _ in get_rule(rule_id).check(ctx))

    return fires


def evaluate(
    examples: Iterable[Example] | None = None, judge: Callable[..., bool] | None = None
) -> dict[str, Score]:
    """Score per rule of ``judge`` (default: the real rules) on the labelled examples."""
    judge = judge or rule_judge()
    scores = {r: Score() for r in RULES}
    for ex in load_labelled() if examples is None else examples:
        scores[ex.rule].add(ex.sentence, ex.fires, judge(ex.rule, ex.sentence, ex.code))
    return scores


def report(name: str, scores: dict[str, Score], show_misses: bool = True) -> None:
    print(f"\n== {name}")
    print(f"{'rule':30} {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}")
    for rule_id, s in scores.items():
        n = s.tp + s.fp + s.fn + s.tn
        print(f"{rule_id:30} {n:4} {s.tp:4} {s.fp:4} {s.fn:4} {s.precision:9.3f} {s.recall:7.3f}")
    if show_misses:
        for rule_id, s in scores.items():
            for sentence, expected in s.misses:
                what = "missed (should fire)" if expected else "false alarm"
                print(f"  {rule_id}: {what}: {sentence}")


def context_judge(
    policy: Policy | None = None, max_scope: int | None = None, fast_sentences: bool = False
) -> Callable[[str, str], bool]:
    """The real rules, with negation and plans judged by medspaCy's ConText instead.

    The same phrase lists find the targets; ConText (its default English rules, no model
    download) marks each negated, hypothetical or uncertain. A hit then does not count when it
    is negated (negatable lists only), hypothetical or uncertain: the same reading the
    hand-written negation gives. Needs ``pip install medspacy`` (not a dependency of unitguard).
    """
    import medspacy
    from loguru import logger  # PyRuSH logs every sentence at DEBUG level
    from medspacy.context import ConText

    logger.disable("PyRuSH")
    policy = policy or load_policy()
    if fast_sentences:  # spaCy's blank English and rule-based sentencizer, not PyRuSH
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
    else:
        nlp = medspacy.load(medspacy_enable=["medspacy_pyrush"])
    context = ConText(nlp, max_scope=max_scope, input_span_type="group")
    lists = {n: p for n, p in policy.phrase_lists.items() if not n.startswith(HYPOTHETICAL)}

    class ConTextMatcher(PhraseMatcher):
        def __init__(self) -> None:
            super().__init__(policy)
            self._cache: dict[str, set[tuple[str, int, int]]] = {}

        def clauses(self, text: str) -> list[str]:
            # One string as long as the text, so the offsets of a hit are ConText's offsets;
            # the phrase patterns never cross the punctuation left in it.
            return [_SYMBOLS.sub(" ", text.lower())]

        def discounted_spans(self, text: str) -> set[tuple[str, int, int]]:
            found = self._cache.get(text)
            if found is None:
                doc = nlp(text)
                spans = []
                for name, plist in lists.items():
                    for m in _compiled(plist.phrases).finditer(text):
                        span = doc.char_span(m.start(), m.end(), name, alignment_mode="expand")
                        if span is not None:
                            spans.append((span, m.start(), m.end()))
                doc.spans["medspacy_spans"] = [span for span, _, _ in spans]
                context(doc)
                found = self._cache[text] = set()
                for span, start, end in spans:
                    negated = lists[span.label_].negatable and span._.is_negated
                    if negated or span._.is_hypothetical or span._.is_uncertain:
                        found.add((span.label_, start, end))
            return found

        def _discounted(self, plist, scan, start: int, end: int) -> bool:
            return (plist.name, start, end) in self.discounted_spans(scan.text)

    matcher = ConTextMatcher()

    def fires(rule_id: str, sentence: str, code: str = DEFAULT_CODE) -> bool:
        ctx = Context(visit_of(sentence, rule_id, code), policy, matcher)
        return any(True for _ in get_rule(rule_id).check(ctx))

    fires.matcher = matcher  # type: ignore[attr-defined]
    return fires


def time_rules(examples: list[Example], with_context: bool, fast_sentences: bool = False) -> float:
    """Best-of-5 microseconds per sentence to run the five 97112 rules on it (one Context
    each), with the hand-written negation or with ConText; each repeat starts with cold caches.
    Only the sentences labelled for those rules, as before issue 23 added two more rules."""
    policy = load_policy()
    sentences = sorted({ex.sentence for ex in examples if ex.rule in RULES_97112})
    rules = [get_rule(r) for r in RULES_97112]
    best = float("inf")
    for _ in range(5):
        if with_context:
            judge = context_judge(policy, fast_sentences=fast_sentences)
            matcher = judge.matcher  # type: ignore[attr-defined]
        else:
            matcher = PhraseMatcher(policy)  # a new matcher: its span memo starts empty
        start = time.perf_counter()
        for sentence in sentences:
            ctx = Context(visit_of(sentence), policy, matcher)
            for rule in rules:
                for _ in rule.check(ctx):
                    pass
        best = min(best, time.perf_counter() - start)
    return best / len(sentences) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--medspacy", action="store_true", help="compare medspaCy ConText")
    parser.add_argument("--quiet", action="store_true", help="scores only, no misses")
    parser.add_argument("--rows", default=":", help="a slice of the data rows, e.g. 965: (0-based)")
    args = parser.parse_args(argv)
    first, _, last = args.rows.partition(":")
    examples = load_labelled()[int(first or 0) : int(last) if last else None]
    judge = rule_judge()
    report("rules (hand-written negation)", evaluate(examples, judge), not args.quiet)
    print(f"time: {time_rules(examples, False):.1f} us per sentence (five rules)")
    if args.medspacy:
        for scope in (None, 3, 5):
            cjudge = context_judge(load_policy(), max_scope=scope)
            name = f"rules with medspaCy ConText (max_scope={scope})"
            report(name, evaluate(examples, cjudge), not args.quiet)
        cjudge = context_judge(load_policy(), fast_sentences=True)
        name = "rules with medspaCy ConText (spaCy sentencizer)"
        report(name, evaluate(examples, cjudge), not args.quiet)
        for fast in (False, True):
            took = time_rules(examples, True, fast)
            how = "spaCy sentencizer" if fast else "PyRuSH"
            print(f"time with ConText ({how}): {took:.1f} us per sentence (five rules)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
