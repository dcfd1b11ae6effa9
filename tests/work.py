"""Counting work without a clock, for the tests that bound it (the house rule: never timed).

``Work`` counts the Python lines run while it is active (``sys.settrace``) and the characters
that the str methods of a ``CountedText`` look at (``find``, ``rfind``, slicing, ``split``):
the loops and the scans a quadratic or cubic text step hides. Both counts are deterministic.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Any


class Work:
    """``with Work() as work: ...`` then ``work.lines`` and ``work.chars``."""

    def __init__(self) -> None:
        self.lines = 0
        self.chars = 0

    def _trace(self, frame: FrameType, event: str, arg: Any):
        if event == "line":
            self.lines += 1
        return self._trace

    def __enter__(self) -> Work:
        self._previous = sys.gettrace()
        sys.settrace(self._trace)
        threading.settrace(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._previous)
        threading.settrace(None)  # type: ignore[arg-type]

    @property
    def total(self) -> int:
        return self.lines + self.chars


class CountedText(str):
    """A str that adds to ``work.chars`` the characters each search or slice covers."""

    work: Work

    def __new__(cls, value: str, work: Work) -> CountedText:
        made = super().__new__(cls, value)
        made.work = work
        return made

    def _span(self, start: int | None, end: int | None) -> int:
        lo, hi, _ = slice(start, end).indices(len(self))
        return max(0, hi - lo)

    def find(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
        found = str.find(self, sub, start, end)
        lo = slice(start, end).indices(len(self))[0]
        self.work.chars += (found - lo + len(sub)) if found >= 0 else self._span(start, end)
        return found

    def rfind(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
        found = str.rfind(self, sub, start, end)
        hi = slice(start, end).indices(len(self))[1]
        self.work.chars += (hi - found) if found >= 0 else self._span(start, end)
        return found

    def __getitem__(self, key: Any) -> CountedText:
        part = str.__getitem__(self, key)
        self.work.chars += len(part)
        return CountedText(part, self.work)  # a parser's remainder ("rawdata[i:]") counts too

    def split(self, *args: Any, **kwargs: Any) -> list[str]:  # type: ignore[override]
        self.work.chars += len(self)
        return str.split(self, *args, **kwargs)

    # A parser that buffers its input ("rawdata = rawdata + data") keeps counting.
    def __add__(self, other: str) -> CountedText:
        return CountedText(str.__add__(self, other), self.work)

    def __radd__(self, other: str) -> CountedText:
        return CountedText(str.__add__(other, self), self.work)
