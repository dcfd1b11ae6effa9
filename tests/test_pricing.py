"""The fee schedule estimate of a therapy day with the multiple procedure payment reduction
(Claims Processing Manual ch.5 §10.7): the first unit of the service with the highest practice
expense in full, every further unit of a reducible code at full work and malpractice and half
its practice expense."""

from __future__ import annotations

from datetime import date

from plugin.policy import load_policy
from plugin.policy.model import Mpfs, MpfsSchedule
from plugin.policy.pricing import price_day

NOVEMBER_2025 = date(2025, 11, 3)  # RVU25D (October release) in force, CF $32.3465


def test_worked_example_with_the_2025_rvus():
    """97110 x2 and 97140 x1 on one day, national, 2025 October release:
    - 97110 unit 1 (highest PE, 0.43): (0.45 + 0.43 + 0.01) x 32.3465 = $28.79
    - 97110 unit 2: (0.45 + 0.215 + 0.01) x 32.3465 = $21.83
    - 97140 (PE 0.40): (0.43 + 0.20 + 0.01) x 32.3465 = $20.70
    $71.32 for the day, against $84.75 (2 x $28.79 + $27.17) without the reduction."""
    mpfs = load_policy().mpfs
    [(first, label), (second, _)] = price_day(mpfs, NOVEMBER_2025, [("97110", 2), ("97140", 1)])
    assert (first, second) == (50.62, 20.70)  # 97110: $28.79 + $21.83
    assert round(first + second, 2) == 71.32
    assert label == "MPFS 2025 national (MPPR on 1 of 2 units)"
    full = [mpfs.unit_amount(c, NOVEMBER_2025)[0] for c in ("97110", "97110", "97140")]
    assert round(sum(full), 2) == 84.75


def _toy(schedule_rvus: dict[str, tuple[float, float, float]], mppr: set[str]) -> Mpfs:
    """A fee schedule whose conversion factor is $1, so RVUs read as dollars."""
    return Mpfs(
        schedules=(
            MpfsSchedule(
                year=2026,
                effective_from=date(2026, 1, 1),
                conversion_factor=1.0,
                amounts={c: round(sum(r), 2) for c, r in schedule_rvus.items()},
                rvus=schedule_rvus,
                source="test",
                confidence="",
                mppr=frozenset(mppr),
            ),
        )
    )


def test_the_manuals_three_rows_procedure_1_unit_1_unit_2_and_procedure_2():
    """The shape of the manual's example (procedure 1 unit 1, procedure 1 unit 2, procedure
    2), in dollars: procedure 1 work $7, PE $10, MP $1 ($18); procedure 2 work $7, PE $8,
    MP $1 ($16). Without the reduction $52; with it $18 + $13 + $12 = $43."""
    mpfs = _toy({"P1": (7.0, 10.0, 1.0), "P2": (7.0, 8.0, 1.0)}, {"P1", "P2"})
    day = date(2026, 3, 4)
    assert price_day(mpfs, day, [("P2", 1), ("P1", 2)]) == [
        (12.0, "MPFS 2026 national (MPPR on 1 of 1 units)"),
        (31.0, "MPFS 2026 national (MPPR on 1 of 2 units)"),
    ]


def test_a_tie_on_practice_expense_goes_to_the_higher_amount():
    mpfs = _toy({"A": (1.0, 5.0, 0.0), "B": (2.0, 5.0, 0.0)}, {"A", "B"})
    [(a, _), (b, _)] = price_day(mpfs, date(2026, 3, 4), [("A", 1), ("B", 1)])
    assert (a, b) == (3.5, 7.0)  # B ($7) is paid in full, A's PE halved


def test_codes_without_indicator_5_are_neither_reduced_nor_ranked():
    """97010 (status B, multiple procedure indicator 9) and a code with no amount that day."""
    mpfs = load_policy().mpfs
    priced = price_day(mpfs, NOVEMBER_2025, [("97010", 1), ("97112", 1), ("99999", 1)])
    assert priced[0] == (mpfs.unit_amount("97010", NOVEMBER_2025)[0], "MPFS 2025 national")
    assert priced[1] == (mpfs.unit_amount("97112", NOVEMBER_2025)[0], "MPFS 2025 national")
    assert priced[2] is None


def test_one_unit_alone_is_paid_in_full():
    mpfs = load_policy().mpfs
    assert price_day(mpfs, NOVEMBER_2025, [("97530", 1)]) == [
        (mpfs.unit_amount("97530", NOVEMBER_2025)[0], "MPFS 2025 national")
    ]
