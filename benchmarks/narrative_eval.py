"""Precision and recall of the narrative rules on a labelled set of synthetic note sentences.

Each row of tests/data/narrative_labelled.csv is (sentence, rule, expected): whether ``rule``
should fire if the sentence were the whole 97112 documentation. Each sentence becomes a visit
with one 97112 Procedure whose note is the sentence (no visit note, no reason Condition) and the
real rule is run on it. A rule firing is the positive class: precision is the share of firings
that were expected, recall the share of expected firings that happened.

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

from plugin.domain import Service, Visit  # noqa: E402
from plugin.narrative import PhraseMatcher  # noqa: E402
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
)


@dataclass(frozen=True, slots=True)
class Example:
    sentence: str
    rule: str
    fires: bool


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
        examples.append(Example(row["sentence"], row["rule"], row["expected"] == "fires"))
    return examples


def visit_of(sentence: str) -> Visit:
    """A visit whose whole 97112 documentation is the sentence."""
    service = Service(ref="Procedure/p1", code="97112", minutes=20, note=sentence)
    return Visit(
        encounter="Encounter/e1", patient=None, day=None, total_minutes=20, services=(service,)
    )


def rule_judge(policy: Policy | None = None) -> Callable[[str, str], bool]:
    """Whether the real rule fires on the sentence (through the rule's own Context)."""
    policy = policy or load_policy()
    matcher = PhraseMatcher(policy)

    def fires(rule_id: str, sentence: str) -> bool:
        ctx = Context(visit_of(sentence), policy, matcher)
        return any(True for _ in get_rule(rule_id).check(ctx))

    return fires


def evaluate(
    examples: Iterable[Example] | None = None, judge: Callable[[str, str], bool] | None = None
) -> dict[str, Score]:
    """Score per rule of ``judge`` (default: the real rules) on the labelled examples."""
    judge = judge or rule_judge()
    scores = {r: Score() for r in RULES}
    for ex in load_labelled() if examples is None else examples:
        scores[ex.rule].add(ex.sentence, ex.fires, judge(ex.rule, ex.sentence))
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


def time_per_sentence(judge: Callable[[str, str], bool], examples: list[Example]) -> float:
    """Best-of-3 microseconds per (sentence, rule) judgement."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for ex in examples:
            judge(ex.rule, ex.sentence)
        best = min(best, time.perf_counter() - start)
    return best / len(examples) * 1e6


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
    print(f"time: {time_per_sentence(judge, examples):.1f} us per sentence and rule")
    if args.medspacy:
        from benchmarks.narrative_context import context_judge

        cjudge = context_judge(load_policy())
        report("rules with medspaCy ConText", evaluate(examples, cjudge), not args.quiet)
        print(f"time: {time_per_sentence(cjudge, examples):.1f} us per sentence and rule")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
