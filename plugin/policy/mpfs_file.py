"""Import CMS's annual Physician Fee Schedule Relative Value File (and its GPCI file).

CMS publishes the file each year as ``RVUyyA.zip`` (January release; B April, C July, D October),
holding ``PPRRVUyy_<month>`` as CSV, fixed-width text and spreadsheet, ``GPCIyyyy`` (geographic
practice cost indices per Medicare locality) and a readme (``RVUyyA.pdf``) that gives the layout.
From 2026 there are two RVU files, ``..._nonQPP`` and ``..._QPP``, one per conversion factor; the
non-QPP one applies to most therapists and is the one read when both are in the zip.

The CSV opens with title rows ("2025 National Physician Fee Schedule Relative Value File October
Release", copyright lines, release date), then a header split over several rows whose last two
name each column ("STATUS" over "CODE", "NON-FAC" over "PE RVU", "CONV" over "FACTOR", ...). We
read columns by those joined names, since CMS adds columns between years. The fixed-width text
follows the readme's record layout (HCPCS 1-5, modifier 6-7, status 58, work RVU 60-65,
non-facility PE RVU 67-72, MP RVU 85-89, multiple procedure indicator 116, conversion factor
133-140). Only the rows without a modifier (the global service) are kept. Status codes
(Attachment A of the readme): A active, B bundled, I not valid for Medicare, N non-covered, ...
Multiple procedure indicator 5: "Subject to 50% of the practice expense component for certain
therapy services" (the therapy MPPR, Claims Processing Manual ch.5 §10.7).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from plugin.errors import InputError
from plugin.policy.cms_source import member_texts, normal, record_import, write_csv_atomically

WHAT = "PFS relative value file (PPRRVU)"
FIELDS = ("code", "status", "work", "pe", "mp", "mult_proc", "conversion_factor", "source")
GPCI_FIELDS = ("locality", "name", "year", "work", "pe", "mp", "source")
THERAPY_PREFIXES = ("97", "92", "G0")
MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG",
                                      "SEP", "OCT", "NOV", "DEC"), start=1)}  # fmt: skip
RELEASES = {"A": 1, "B": 4, "C": 7, "D": 10}  # RVUyyA.zip = January release, ...
_CODE = re.compile(r"^[0-9A-Z]{4}[0-9A-Z]$")
_TITLE = re.compile(r"(\d{4}) NATIONAL PHYSICIAN FEE SCHEDULE RELATIVE VALUE FILE (\w+) RELEASE")
_NAME = re.compile(r"PPRRVU(\d{2}|\d{4})[_ ]?([A-Z]{3})", re.I)
_ZIP = re.compile(r"RVU(\d{2})([A-D])", re.I)
# The CSV's joined column names (the last two header rows) this importer needs.
COLUMNS = {
    "mod": "MOD",
    "status": "STATUS CODE",
    "work": "WORK RVU",
    "pe": "NON-FAC PE RVU",
    "mp": "MP RVU",
    "mult_proc": "MULT PROC",
    "conversion_factor": "CONV FACTOR",
}
# The fixed-width record (readme "DATA RECORD"), as 0-based slices.
FIXED = {
    "mod": (5, 7),
    "status": (57, 58),
    "work": (59, 65),
    "pe": (66, 72),
    "mp": (84, 89),
    "mult_proc": (115, 116),
    "conversion_factor": (132, 140),
}


@dataclass(frozen=True)
class RvuRow:
    code: str
    status: str
    work: float
    pe: float  # non-facility practice expense
    mp: float
    mult_proc: str
    conversion_factor: float


@dataclass(frozen=True)
class RvuFile:
    effective: date
    rows: list[RvuRow]
    read: int  # data rows read, modifier rows included


@dataclass(frozen=True)
class GpciRow:
    locality: str  # "<MAC>-<locality number>", e.g. "10112-00"
    name: str
    work: float
    pe: float
    mp: float


def _release(text_head: str, *names: str) -> date | None:
    """The release's first day, from the title row, else the file or zip name."""
    found = _TITLE.search(text_head.upper())
    if found and found.group(2)[:3] in MONTHS:
        return date(int(found.group(1)), MONTHS[found.group(2)[:3]], 1)
    for name in names:
        by_name = _NAME.search(name)
        if by_name and by_name.group(2).upper() in MONTHS:
            year = int(by_name.group(1))
            return date(year if year > 99 else 2000 + year, MONTHS[by_name.group(2).upper()], 1)
        by_zip = _ZIP.search(name)
        if by_zip:
            return date(2000 + int(by_zip.group(1)), RELEASES[by_zip.group(2).upper()], 1)
    return None


def _number(value: str, where: str, field: str) -> float:
    value = value.strip()
    if value in ("", "NA"):
        return 0.0
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{where}: {field} {value!r} is not a number") from None


def _make_row(code: str, get, where: str) -> RvuRow:
    status = get("status").strip()
    if len(status) != 1 or not status.isalpha():
        raise InputError(f"{where}: status code {status!r} is not a letter (not CMS's layout?)")
    factor = _number(get("conversion_factor"), where, "conversion factor")
    if factor <= 0:
        raise InputError(f"{where}: no conversion factor (file truncated or not CMS's layout)")
    return RvuRow(
        code,
        status,
        _number(get("work"), where, "work RVU"),
        _number(get("pe"), where, "non-facility PE RVU"),
        _number(get("mp"), where, "MP RVU"),
        get("mult_proc").strip(),
        factor,
    )


def parse_rvu_csv(text: str, where: str) -> tuple[list[RvuRow], int]:
    """Global-service rows of a PPRRVU CSV and the number of data rows read."""
    reader = csv.reader(io.StringIO(text, newline=""))
    above: list[str] = []
    columns: dict[str, int] | None = None
    rows, read = [], 0
    for cells in reader:
        if columns is None:
            if cells and normal(cells[0]) == "HCPCS":
                names = [
                    normal(f"{above[i] if i < len(above) else ''} {cell}")
                    for i, cell in enumerate(cells)
                ]
                missing = [n for n in COLUMNS.values() if n not in names]
                if missing:
                    raise InputError(f"{where}: the header has no {', '.join(missing)} column")
                columns = {key: names.index(name) for key, name in COLUMNS.items()}
            above = cells
            continue
        code = cells[0].strip().upper() if cells else ""
        if not _CODE.match(code):
            continue
        read += 1
        here = f"{where} line {reader.line_num}"
        if len(cells) <= max(columns.values()):
            raise InputError(f"{here}: the row stops short (file truncated?)")
        if cells[columns["mod"]].strip():
            continue
        rows.append(_make_row(code, lambda key, c=cells, at=columns: c[at[key]], here))
    if columns is None:
        raise InputError(f"{where}: no 'HCPCS, MOD, DESCRIPTION' header row (expected {WHAT})")
    return rows, read


def parse_rvu_fixed(text: str, where: str) -> tuple[list[RvuRow], int]:
    """Global-service rows of the fixed-width PPRRVU text (header records start with HDR)."""
    rows, read = [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        code = line[:5].strip().upper()
        if line.startswith("HDR") or not _CODE.match(code):
            continue
        read += 1
        here = f"{where} line {number}"
        if len(line) < FIXED["conversion_factor"][1]:
            raise InputError(f"{here}: the record stops short (file truncated?)")
        if line[slice(*FIXED["mod"])].strip():
            continue
        rows.append(_make_row(code, lambda key, ln=line: ln[slice(*FIXED[key])], here))
    return rows, read


def read_rvu(path: Path) -> RvuFile:
    """The RVU table of a PPRRVU csv/txt, or of the RVU zip (its non-QPP CSV preferred)."""
    members = member_texts(path, WHAT, lambda n: "PPRRVU" in n.upper())
    csvs = [m for m in members if m[0].lower().endswith(".csv")]
    chosen = csvs or members
    if len(chosen) > 1:
        chosen = [m for m in chosen if "NONQPP" in m[0].upper()] or chosen[:1]
    name, text = chosen[0]
    where = path.name if name == path.name else f"{path.name}:{name}"
    if name.lower().endswith(".csv") or "HCPCS,MOD" in text[:5000].upper().replace(" ", ""):
        rows, read = parse_rvu_csv(text, where)
    else:
        rows, read = parse_rvu_fixed(text, where)
    if not rows:
        raise InputError(f"{where}: no RVU rows found (expected {WHAT})")
    effective = _release(text[:3000], name, path.name)
    if effective is None:
        raise InputError(f"{where}: cannot tell the release (no title row, no PPRRVUyy_MON name)")
    factors = {r.conversion_factor for r in rows}
    if len(factors) != 1:
        raise InputError(f"{where}: more than one conversion factor ({sorted(factors)})")
    return RvuFile(effective, rows, read)


def read_gpci(path: Path) -> tuple[int, list[GpciRow], str]:
    """(year, rows, member name) of CMS's GPCI file (GPCIyyyy.csv, or the RVU zip's)."""
    members = member_texts(path, "GPCI file", lambda n: "GPCI" in n.upper())
    csvs = [m for m in members if m[0].lower().endswith(".csv")] or members
    name, text = csvs[0]
    where = path.name if name == path.name else f"{path.name}:{name}"
    reader = csv.reader(io.StringIO(text, newline=""))
    columns: dict[str, int] | None = None
    year, rows = None, []
    for cells in reader:
        names = [normal(c) for c in cells]
        if columns is None:
            if any("LOCALITY NUMBER" in n for n in names) and any("GPCI" in n for n in names):
                columns = _gpci_columns(names, where)
                found = re.search(r"(\d{4}) (PW|WORK)", " ".join(names))
                year = int(found.group(1)) if found else None
            continue
        mac = cells[columns["mac"]].strip() if cells else ""
        if not re.fullmatch(r"\d{5}", mac):
            continue  # footnotes and blank rows
        here = f"{where} line {reader.line_num}"
        try:
            rows.append(
                GpciRow(
                    f"{mac}-{cells[columns['locality']].strip().zfill(2)}",
                    f"{cells[columns['state']].strip()} {cells[columns['name']].strip()}",
                    *(float(cells[columns[k]]) for k in ("work", "pe", "mp")),
                )
            )
        except (IndexError, ValueError):
            raise InputError(f"{here}: not a complete GPCI row (file truncated?)") from None
    if columns is None or not rows:
        raise InputError(f"{where}: no GPCI rows found (expected CMS's GPCIyyyy file)")
    year = year or _year_in_name(name, path.name)
    if year is None:
        raise InputError(f"{where}: cannot tell the GPCI year (no 'yyyy PW GPCI' column)")
    return year, rows, name


def _gpci_columns(names: list[str], where: str) -> dict[str, int]:
    wanted = {
        "mac": ("CONTRACTOR", "MAC"),
        "state": ("STATE",),
        "locality": ("LOCALITY NUMBER",),
        "name": ("LOCALITY NAME",),
        "work": ("PW GPCI", "WORK GPCI"),
        "pe": ("PE GPCI",),
        "mp": ("MP GPCI",),
    }
    found = {}
    for key, needles in wanted.items():
        index = next((i for i, n in enumerate(names) if any(x in n for x in needles)), None)
        if index is None:
            raise InputError(f"{where}: the GPCI header has no {needles[0]} column")
        found[key] = index
    return found


def _year_in_name(*names: str) -> int | None:
    for name in names:
        found = re.search(r"GPCI(\d{4})", name, re.I)
        if found:
            return int(found.group(1))
    return None


@dataclass(frozen=True)
class MpfsImport:
    path: Path
    effective: date
    read: int
    kept: int
    gpci_year: int | None = None
    localities: int = 0


def import_mpfs_file(
    path: Path,
    into: Path,
    gpci: Path | None = None,
    locality: str | None = None,
    all_codes: bool = False,
) -> MpfsImport:
    """Read the RVU file (and the GPCI file, from ``gpci`` or the same zip when a locality is
    asked for), then write ``mpfs_<release>.csv`` (and ``gpci_<year>.csv``) in ``into``."""
    table = read_rvu(path)
    gpci_read = None
    if gpci is not None or locality:
        gpci_read = read_gpci(gpci or path)
        if locality and locality not in {g.locality for g in gpci_read[1]}:
            raise InputError(
                f"{gpci or path}: locality {locality!r} is not in the GPCI file "
                "(write it as MAC-locality, e.g. 10112-00)"
            )
    source = path.name
    kept = [
        {**{f: getattr(r, f) for f in FIELDS[:-1]}, "source": source}
        for r in table.rows
        if all_codes or r.code.startswith(THERAPY_PREFIXES)
    ]
    written = f"mpfs_{table.effective.isoformat()}.csv"
    write_csv_atomically(into / written, FIELDS, kept)
    entry = {"kind": "mpfs", "source": source, "effective": table.effective.isoformat()}
    record_import(into, written, {**entry, "rows": table.read})
    result = MpfsImport(into / written, table.effective, table.read, len(kept))
    if gpci_read is not None:
        year, rows, name = gpci_read
        gpci_file = f"gpci_{year}.csv"
        write_csv_atomically(
            into / gpci_file,
            GPCI_FIELDS,
            [{**g.__dict__, "year": year, "source": name} for g in rows],
        )
        settings = {"locality": locality} if locality else {}
        record_import(
            into,
            gpci_file,
            {"kind": "gpci", "source": name, "effective": f"{year}-01-01", "rows": len(rows)},
            **settings,
        )
        result = MpfsImport(
            result.path, result.effective, result.read, result.kept, year, len(rows)
        )
    return result
