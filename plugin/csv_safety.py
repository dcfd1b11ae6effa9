"""CSV cells a spreadsheet will not run as formulas: one guard for every CSV the app writes (the
audit's outputs, the coder queue's export).

A cell that starts, after any spaces, with ``=``, ``+``, ``-``, ``@``, a tab or a line break gets a
leading single quote (OWASP, "CSV Injection"); some spreadsheets trim leading spaces and line
breaks before they look for a formula, so those are looked past. A number (``-2.5``) is left as
it is, and so is anything that is not text.
"""

from __future__ import annotations

import math

__all__ = ["FORMULA_START", "safe_cell", "safe_text"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: object) -> object:
    """``value`` as a spreadsheet will not run it: text that starts like a formula gets a
    leading ``'``; numbers (``-2.5``) and everything else are unchanged."""
    if not isinstance(value, str):
        return value
    if not value.startswith(FORMULA_START) and not value.lstrip().startswith(FORMULA_START):
        return value
    try:
        if math.isfinite(float(value)) and value.strip() == value:
            return value
    except ValueError:
        pass
    return "'" + value


def safe_text(value: object) -> str:
    """``safe_cell`` of a value written as text ("" for None)."""
    return str(safe_cell("" if value is None else str(value)))
