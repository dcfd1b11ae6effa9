"""A cheaper ``__init__`` for the frozen, slotted dataclasses the review makes by the hundred.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__(self, name, value)``, going round its own ``__setattr__`` that refuses
changes. That call costs about four times a plain attribute store, and a review builds some
200 fields of such objects per visit (Visit, Service, BilledLine, Finding, ...). ``fast_init``
swaps in an ``__init__`` that stores each field through its slot's descriptor instead: the
same signature, defaults and default factories, the instance as frozen as before
(assignment still raises ``FrozenInstanceError``), ``dataclasses.replace`` and pickling as
they were. Measured in ``benchmarks/frozen_init_bench.py``.

A ``__post_init__`` is called last, as the generated ``__init__`` does; ``init=False`` fields
without a default are left for it to set. Classes it cannot treat exactly (``InitVar``,
keyword-only fields, ``init=False`` fields with a default, no slots, not frozen) are left with
the generated ``__init__``.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

T = TypeVar("T", bound=type)

_FACTORY = object()  # stands for "call the field's default factory"


class _Probe:
    __slots__ = ("x",)


_MEMBER = type(_Probe.__dict__["x"])  # the type of a slot's descriptor


def _treatable(cls: type) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        return False
    for f in dataclasses.fields(cls):
        if f.kw_only or isinstance(f.type, dataclasses.InitVar):
            return False
        if not f.init and (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        ):
            return False  # set by the generated __init__ from its default: not handled here
    # InitVar pseudo-fields are not in fields(); they are in the annotations.
    return all(
        not (isinstance(t, str) and t.startswith(("InitVar", "dataclasses.InitVar")))
        for t in getattr(cls, "__annotations__", {}).values()
    )


def _slot(cls: type, name: str) -> object | None:
    """The member descriptor of a slot, from the class or the base that declares it."""
    for klass in cls.__mro__:
        found = klass.__dict__.get(name)
        if found is not None:
            return found if isinstance(found, _MEMBER) else None
    return None


def fast_init(cls: T) -> T:
    """Give a frozen, slotted dataclass an ``__init__`` that stores its fields directly."""
    if not _treatable(cls):
        return cls
    setters = [_slot(cls, f.name) for f in dataclasses.fields(cls)]
    if any(s is None for s in setters) or not all(
        f.name.isidentifier() for f in dataclasses.fields(cls)
    ):
        return cls
    names: dict[str, object] = {"_FACTORY": _FACTORY}
    params, body = ["self"], []
    for n, f in enumerate(dataclasses.fields(cls)):
        if not f.init:  # left for __post_init__ to set, as the generated __init__ does
            continue
        setter = f"_set{n}"
        names[setter] = setters[n].__set__  # type: ignore[union-attr]
        if f.default is not dataclasses.MISSING:
            names[f"_default{n}"] = f.default
            params.append(f"{f.name}=_default{n}")
            body.append(f"    {setter}(self, {f.name})")
        elif f.default_factory is not dataclasses.MISSING:
            names[f"_factory{n}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            body.append(f"    {setter}(self, _factory{n}() if {f.name} is _FACTORY else {f.name})")
        else:
            params.append(f.name)
            body.append(f"    {setter}(self, {f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    # As dataclasses itself does: the source holds only the class's field names (identifiers,
    # checked above) and names of our own; no outside text reaches it.
    exec(source, names)  # noqa: S102  # nosec B102
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls
