"""Making the visit model's frozen dataclasses: the generated __init__ beside fast_init's.

Both classes are built in one run from the same field list (``plugin.domain.Finding``'s nine
fields and ``Service``'s eleven); best of several repeats, GC off. The last line is the ratio
of fast_init's time to the generated one's.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin import domain  # noqa: E402
from plugin.frozen import fast_init  # noqa: E402


def twin(cls: type) -> tuple[type, type]:
    """The class as the dataclass decorator makes it, and the same with fast_init."""
    spec = [(f.name, f.type, f) for f in dataclasses.fields(cls)]

    def make() -> type:
        fields = [
            (name, kind, dataclasses.field(default=f.default))
            if f.default is not dataclasses.MISSING
            else (name, kind)
            for name, kind, f in spec
        ]
        return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True)

    return make(), fast_init(make())


def main() -> None:
    cases = {
        "Finding": (
            domain.Finding,
            ("rule", domain.Severity.ERROR, "97112", "message", "fix", "citation", ("x",), 1.0, ()),
        ),
        "Service": (domain.Service, ("Procedure/p", "97112", 20)),
    }
    total_generated = total_fast = 0.0
    gc.disable()
    for name, (cls, args) in cases.items():
        generated, fast = twin(cls)
        slow_s = min(timeit.repeat(lambda g=generated, a=args: g(*a), number=100_000, repeat=7))
        fast_s = min(timeit.repeat(lambda f=fast, a=args: f(*a), number=100_000, repeat=7))
        total_generated += slow_s
        total_fast += fast_s
        print(f"{name}: generated {slow_s * 10:.3f} us, fast_init {fast_s * 10:.3f} us per object")
    gc.enable()
    print(f"fast_init/generated: {total_fast / total_generated:.2f}")


if __name__ == "__main__":
    main()
