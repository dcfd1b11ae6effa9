"""Import CMS's quarterly practitioner MUE file (Medically Unlikely Edits) into the policy data.

CMS publishes "Medicare NCCI Medically Unlikely Edits (MUEs) - Practitioner Services" each
quarter as a zip holding ``MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY`` in CSV and spreadsheet
form. The CSV opens with the AMA copyright notice as one quoted, multi-line cell, then the
header row ``HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication Indicator,
MUE Rationale``, then one row per code: the most units of the code one practitioner reports for
one patient on one date of service, and the adjudication indicator (MAI) as its digit and words
("3 Date of Service Edit: Clinical"). The file carries no dates of its own: it is in force from
the date in its name until the next quarter's file. Source: CMS NCCI MUE page and the layout of
the file itself (tests/data/cms/README.md).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from plugin.errors import InputError
from plugin.policy.cms_source import (
    date_in_name,
    member_texts,
    normal,
    record_import,
    write_csv_atomically,
)

WHAT = "practitioner MUE file"
FIELDS = ("code", "units", "mai", "rationale", "effective", "source")
THERAPY_PREFIXES = ("97", "92", "G0")
_CODE = re.compile(r"^[0-9A-Z]{4}[0-9A-Z]$")


@dataclass(frozen=True)
class MueRow:
    code: str
    units: int
    mai: str  # "1" claim line, "2" date of service (policy), "3" date of service (clinical)
    rationale: str


@dataclass(frozen=True)
class MueImport:
    path: Path
    effective: date
    read: int
    kept: int


def _columns(header: list[str], where: str) -> dict[str, int]:
    names = [normal(c) for c in header]
    if any("OUTPATIENT HOSPITAL" in n or "DME" in n for n in names):
        raise InputError(f"{where}: this is not the practitioner MUE table ({header[1].strip()})")
    found = {}
    for key, needle in (
        ("code", "HCPCS"),
        ("units", "MUE VALUE"),
        ("mai", "ADJUDICATION INDICATOR"),
        ("rationale", "RATIONALE"),
    ):
        index = next((i for i, n in enumerate(names) if needle in n), None)
        if index is None and key != "rationale":
            raise InputError(f"{where}: the header has no {needle!r} column")
        found[key] = index if index is not None else -1
    return found


def parse_mue(text: str, where: str) -> list[MueRow]:
    """The rows of one MUE table in CMS's CSV layout; refuses a table it cannot read whole."""
    reader = csv.reader(io.StringIO(text, newline=""))
    columns = None
    rows: list[MueRow] = []
    try:
        for cells in reader:
            if columns is None:
                if len(cells) >= 2 and "HCPCS" in normal(cells[0]) and "MUE" in normal(cells[1]):
                    columns = _columns(cells, where)
                continue
            if not any(c.strip() for c in cells):
                continue
            rows.append(_row(cells, columns, f"{where} line {reader.line_num}"))
    except csv.Error as exc:
        raise InputError(f"{where} line {reader.line_num}: {exc} (file truncated?)") from None
    if columns is None:
        raise InputError(
            f"{where}: no 'HCPCS/CPT Code, Practitioner Services MUE Values' header "
            f"(expected CMS's {WHAT})"
        )
    if not rows:
        raise InputError(f"{where}: the MUE table has a header but no rows")
    return rows


def _row(cells: list[str], columns: dict[str, int], where: str) -> MueRow:
    try:
        code = cells[columns["code"]].strip().upper()
        units = int(cells[columns["units"]].strip())
        mai = cells[columns["mai"]].strip()[:1]
        rationale = cells[columns["rationale"]].strip() if columns["rationale"] >= 0 else ""
    except (IndexError, ValueError):
        raise InputError(
            f"{where}: not a complete MUE row ({', '.join(cells)[:60]!r}); "
            "the file is truncated or not in CMS's layout"
        ) from None
    if not _CODE.match(code) or units < 0 or mai not in ("1", "2", "3"):
        raise InputError(
            f"{where}: {code!r} {units} {mai!r} is not an MUE row "
            "(file truncated or not in CMS's layout)"
        )
    return MueRow(code, units, mai, rationale)


def _practitioner(name: str) -> bool:
    lowered = name.lower()
    return "outpatienthospital" not in lowered and "dme" not in lowered


def import_mue_file(
    path: Path, into: Path, effective: date | None = None, all_codes: bool = False
) -> MueImport:
    """Read CMS's practitioner MUE file (csv, or the zip) and write ``mue_<effective>.csv``."""
    members = member_texts(path, WHAT, _practitioner)
    rows: list[MueRow] = []
    for name, text in members:
        rows += parse_mue(text, f"{path.name}:{name}" if name != path.name else path.name)
    effective = effective or date_in_name(*(n for n, _ in members), path.name)
    if effective is None:
        raise InputError(
            f"{path}: no effective date in the file name (CMS names it ..._Eff_MM-DD-YYYY); "
            "give --effective YYYY-MM-DD"
        )
    source = ", ".join(n for n, _ in members)
    kept = [
        {
            "code": r.code,
            "units": r.units,
            "mai": r.mai,
            "rationale": r.rationale,
            "effective": effective.isoformat(),
            "source": source,
        }
        for r in rows
        if all_codes or r.code.startswith(THERAPY_PREFIXES)
    ]
    written = f"mue_{effective.isoformat()}.csv"
    write_csv_atomically(into / written, FIELDS, kept)
    record_import(
        into,
        written,
        {"kind": "mue", "source": source, "effective": effective.isoformat(), "rows": len(rows)},
    )
    return MueImport(into / written, effective, len(rows), len(kept))
