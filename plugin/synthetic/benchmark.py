"""The speed benchmarks' mix of synthetic visits (``benchmarks/review_bench.py``)."""

from __future__ import annotations

import random

from plugin.synthetic.visit import CLEAN_NOTE, CLEAN_VISIT_NOTE, VisitBuilder

BENCHMARK_CODES = ["97112", "97110", "97140", "97116", "97530"]
BENCHMARK_NOTES = [
    CLEAN_NOTE,
    "Patient performed balance exercises independently, no cues needed.",
    "Quad strengthening with theraband, squats 3x10 reps for strength; tolerated.",
    "Gait training with verbal cues for step length; decreased sway; tolerated well.",
]


def with_figures(rng: random.Random, note: str) -> str:
    """``note`` with this visit's own test figures. Real notes differ from visit to visit, so
    the benchmark's must too: drawn from four fixed texts, a memo keyed by the text hit on
    every visit and made the review look about 9% cheaper than on real notes."""
    return f"{note} Berg {rng.randint(28, 54)}/56, TUG {rng.randint(8, 20)}.{rng.randint(0, 9)} s."


def benchmark_visit(rng: random.Random, n: int) -> dict:
    """One Bundle of the speed benchmarks' mix: one to three timed codes with their minutes,
    sometimes overlapping or over-billed, a tenth unsigned, varied modifiers, half with an
    earlier visit, and every note with its own figures."""
    b = VisitBuilder(
        day=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        length=rng.choice([None, 45, 60, 75]),
        signed=rng.random() > 0.1,
        visit_note=with_figures(rng, CLEAN_VISIT_NOTE),
    )
    clock = 9 * 60
    for code in rng.sample(BENCHMARK_CODES, rng.randint(1, 3)):
        minutes = rng.randint(5, 35)
        start, end = clock, clock + minutes
        clock = end - (rng.randint(0, 5) if rng.random() < 0.1 else 0)
        b.proc(
            code,
            f"{start // 60:02d}:{start % 60:02d}",
            f"{end // 60:02d}:{end % 60:02d}",
            note=with_figures(rng, rng.choice(BENCHMARK_NOTES)),
        )
        b.line(
            code,
            max(1, (minutes + 7) // 15 + (1 if rng.random() < 0.15 else 0)),
            mods=rng.choice([("GP",), ("GP",), ("GP", "KX"), ()]),
        )
    if rng.random() < 0.5:
        b.earlier_visit(
            f"enc-h{n}", "2026-01-02", note=with_figures(rng, rng.choice(BENCHMARK_NOTES))
        )
        b.line("97110", 2, encounter=f"enc-h{n}", day="2026-01-02")
    return b.bundle()
