"""Unit methods: the CMS manual's worked examples, the three methods side by side, properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder
from plugin.units import allocate, ladder_units


@pytest.mark.parametrize(
    ("minutes", "units"),
    [
        (0, 0),
        (7, 0),
        (8, 1),
        (22, 1),
        (23, 2),
        (37, 2),
        (38, 3),
        (52, 3),
        (53, 4),
        (67, 4),
        (68, 5),
        (82, 5),
        (83, 6),
        (97, 6),
        (98, 7),
        (112, 7),
        (113, 8),
        (127, 8),
    ],
)
def test_ladder_matches_the_manual_table(minutes, units):
    """CMS Claims Processing Manual ch.5 §20.2 C units table (1 unit >= 8 through 22, ...)."""
    assert ladder_units(minutes) == units


# The manual's examples (Pub. 100-04 ch.5 §20.2 C), numbers from the manual text:
# Ex 1: "24 minutes of neuromuscular reeducation, code 97112, 23 minutes of therapeutic exercise,
#        code 97110" -> 47 minutes, 3 units: 2 x 97112 and 1 x 97110.
# Ex 2: "20 minutes of neuromuscular reeducation (97112) 20 minutes therapeutic exercise (97110)"
#        -> 40 minutes, 3 units; "choose either code for 2 units and bill the other for 1 unit.
#        Do not bill 3 units for either one of the codes."
# Ex 3: "33 minutes of therapeutic exercise (97110) 7 minutes of manual therapy (97140)"
#        -> 40 minutes, 3 units: 2 x 97110, 1 x 97140 (the 7 minutes beat the 3 left of 97110).
# Ex 4: "18 minutes of therapeutic exercise (97110) 13 minutes of manual therapy (97140)
#        10 minutes of gait training (97116) 8 minutes of ultrasound (97035)" -> 49 minutes,
#        3 units: 1 each of 97110, 97140 and 97116, no units of 97035.
def test_cms_example_1():
    alloc = allocate("cms", {"97112": 24, "97110": 23})
    assert (alloc.total_minutes, alloc.total_units) == (47, 3)
    assert alloc.units == {"97112": 2, "97110": 1}
    assert alloc.most == {"97112": 2, "97110": 1}


@pytest.mark.parametrize("billed", [{"97112": 2, "97110": 1}, {"97112": 1, "97110": 2}])
def test_cms_example_2_either_code_may_take_the_extra_unit(billed):
    alloc = allocate("cms", {"97112": 20, "97110": 20}, billed)
    assert alloc.total_units == 3
    assert alloc.units == billed
    assert alloc.most == {"97112": 2, "97110": 2}


def test_cms_example_2_never_three_of_one_code():
    alloc = allocate("cms", {"97112": 20, "97110": 20}, {"97112": 3})
    assert alloc.units["97112"] == 2


def test_cms_example_3():
    alloc = allocate("cms", {"97110": 33, "97140": 7})
    assert alloc.total_units == 3
    assert alloc.units == {"97110": 2, "97140": 1}
    assert alloc.most["97110"] == 2  # 3 units of 97110 are never supported


def test_cms_example_4():
    alloc = allocate("cms", {"97110": 18, "97140": 13, "97116": 10, "97035": 8})
    assert (alloc.total_minutes, alloc.total_units) == (49, 3)
    assert alloc.units == {"97110": 1, "97140": 1, "97116": 1, "97035": 0}
    assert alloc.most["97035"] == 0


def test_seven_minutes_or_less_rule():
    """Three services of 7 minutes: 21 minutes, 1 unit, any one of the three codes."""
    alloc = allocate("cms", {"97112": 7, "97110": 7, "97140": 7})
    assert alloc.total_units == 1
    assert sum(alloc.units.values()) == 1
    assert alloc.most == {"97112": 1, "97110": 1, "97140": 1}


def test_untimed_minutes_are_not_pooled():
    """Example U1 (billing-rules.md): e-stim G0283 is untimed; 53 timed minutes -> 4 units."""
    b = VisitBuilder(length=90)
    b.proc("97110", "09:00", "09:30", note="Strength 3x10")
    b.proc("97140", "09:30", "09:45", goals=(), note="Manual therapy")
    b.proc("97035", "09:45", "09:53", goals=(), note="Ultrasound")
    b.proc(
        "G0283",
        "09:53",
        "10:23",
        note="Unattended e-stim",
        system="https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    )
    report = review_bundle(b.bundle())
    assert report.total_timed_minutes == 53
    assert report.total_timed_units == 4
    by_code = {s.code: s.supported_units for s in report.services}
    assert by_code == {"97110": 2, "97140": 1, "97035": 1, "G0283": 1}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("cms", {"97110": 2, "97140": 1}),
        ("ama", {"97110": 2, "97140": 0}),
        ("strict15", {"97110": 2, "97140": 0}),
    ],
)
def test_same_visit_under_three_methods(method, expected):
    b = VisitBuilder(payer="Acme Commercial Health", sopt="5")
    b.proc("97110", "09:00", "09:33", note="Strength 3x10")
    b.proc("97140", "09:33", "09:40", goals=(), note="Manual therapy")
    b.line("97110", 2)
    b.line("97140", 1)
    report = review_bundle(b.bundle(), method=method)
    assert {s.code: s.supported_units for s in report.services} == expected
    exceed = {f.code for f in report.findings if f.rule == "units-exceed-time"}
    assert exceed == ({"97140"} if method != "cms" else set())


def test_strict15_needs_full_units():
    alloc = allocate("strict15", {"97112": 22, "97110": 44})
    assert alloc.units == {"97112": 1, "97110": 2}
    assert allocate("ama", {"97112": 22, "97110": 44}).units == {"97112": 1, "97110": 3}


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown unit method"):
        allocate("per-visit", {"97112": 20})


minutes_maps = st.dictionaries(
    st.sampled_from(["97110", "97112", "97116", "97140", "97530", "97535"]),
    st.integers(min_value=0, max_value=240),
    min_size=1,
    max_size=6,
)


@given(minutes_maps, st.sampled_from(["cms", "ama", "strict15"]))
def test_supported_units_never_exceed_the_ladder(minutes, method):
    alloc = allocate(method, minutes)
    assert sum(alloc.units.values()) <= ladder_units(sum(minutes.values())) + (
        len(minutes) if method == "ama" else 0
    )
    for code, m in minutes.items():
        assert alloc.units[code] <= alloc.most[code] <= ladder_units(m) + 1
    if method == "cms":
        assert sum(alloc.units.values()) == alloc.total_units == ladder_units(sum(minutes.values()))
    else:
        for code, m in minutes.items():
            assert alloc.units[code] <= ladder_units(m)


@given(
    minutes_maps,
    st.integers(min_value=1, max_value=60),
    st.sampled_from(["cms", "ama", "strict15"]),
)
def test_units_never_decrease_when_minutes_grow(minutes, extra, method):
    before = allocate(method, minutes)
    for code in minutes:
        grown = dict(minutes)
        grown[code] += extra
        after = allocate(method, grown)
        assert after.total_units >= before.total_units
        assert after.most[code] >= before.most[code]
        if method != "cms":
            assert after.units[code] >= before.units[code]


@given(minutes_maps)
def test_cms_gives_each_code_its_full_units(minutes):
    alloc = allocate("cms", minutes)
    for code, m in minutes.items():
        assert m // 15 <= alloc.units[code] <= m // 15 + 1
