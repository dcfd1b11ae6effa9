"""plugin.frozen.fast_init: the same objects as the generated __init__, still frozen."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from plugin import domain
from plugin.frozen import fast_init


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: tuple = ()
    c: list = field(default_factory=list)


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    a: int
    b: tuple = ()
    c: list = field(default_factory=list)


def test_same_fields_defaults_and_factories_as_the_generated_init():
    for args, kwargs in [((1,), {}), ((1, (2,)), {}), ((1,), {"c": [3]}), ((), {"a": 4})]:
        assert dataclasses.astuple(Fast(*args, **kwargs)) == dataclasses.astuple(
            Plain(*args, **kwargs)
        )
    first, second = Fast(1), Fast(1)
    assert first.c == [] and first.c is not second.c  # a fresh list from the factory each time


def test_wrong_arguments_fail_as_before():
    with pytest.raises(TypeError):
        Fast()
    with pytest.raises(TypeError):
        Fast(1, nope=2)


def test_still_frozen_comparable_hashable_replaceable_and_picklable():
    made = Fast(1, (2,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.a = 2  # type: ignore[misc]
    assert made == Fast(1, (2,)) and made != Fast(2, (2,))
    assert dataclasses.replace(made, a=5) == Fast(5, (2,))
    assert pickle.loads(pickle.dumps(made)) == made
    assert hash(Fast(1, (2,), None)) == hash(Fast(1, (2,), None))  # type: ignore[arg-type]


def test_classes_it_cannot_treat_exactly_are_left_alone():
    @dataclass(frozen=True, slots=True)
    class Later:
        a: int
        b: int = field(init=False, default=0)

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class NotFrozen:
        a: int

    for cls in (Later, NoSlots, NotFrozen):
        generated = cls.__init__
        assert fast_init(cls).__init__ is generated


def test_post_init_runs_last_and_sets_the_fields_left_to_it():
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Derived:
        parts: tuple[int, ...]
        total: int = field(init=False, repr=False, compare=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "total", sum(self.parts))

    assert "_set0" in Derived.__init__.__code__.co_names  # treated, not left alone
    made = Derived((1, 2))
    assert made.total == 3
    assert dataclasses.replace(made, parts=(4,)).total == 4
    assert made == Derived((1, 2)) and repr(made).endswith("Derived(parts=(1, 2))")
    with pytest.raises(TypeError):
        Derived((1,), total=5)  # type: ignore[call-arg]


def test_a_service_knows_who_furnished_it():
    pt = domain.Performer("Practitioner/pt", "PT")
    pta = domain.Performer("Practitioner/pta", "PT", assistant=True)
    aide = domain.Performer("Practitioner/aide", "AIDE")
    cosigner = domain.Performer("Practitioner/pt2", "PT", furnished=False)
    alone = domain.Service("Procedure/a", "97112", 20, performers=(pta, cosigner))
    assert alone.furnishing == (pta,) and alone.assistant_only and not alone.unqualified_only
    both = domain.Service("Procedure/b", "97112", 20, performers=(pta, pt))
    assert not both.assistant_only
    assert domain.Service("Procedure/c", "97110", 10, performers=(aide,)).unqualified_only
    nobody = domain.Service("Procedure/d", "97110", 10)
    assert nobody.furnishing == () and not nobody.assistant_only and not nobody.unqualified_only


def test_the_visit_model_uses_it():
    assert domain.Service.__init__.__qualname__ == "Service.__init__"
    assert "_set0" in domain.Service.__init__.__code__.co_names
    service = domain.Service("Procedure/p", "97112", 20)
    assert service.performers == () and service.seconds is None
