"""The CMS tables as the policy sees them: the shipped excerpts plus what was imported.

Shipped: the files listed in ``data/cms/sources.toml``, excerpts of CMS's own files in CMS's
layout (read with the importers' parsers), each naming its source file, release and confidence.
Imported: what ``unitguard policy import-mue|import-mpfs`` wrote in the policy folder
(``mue_<date>.csv``, ``mpfs_<date>.csv``, ``gpci_<year>.csv``, recorded in ``imports.json``).
For a date, the version in force is the latest that started on or before it; an import wins
over a shipped excerpt of the same date.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from plugin.errors import InputError, PolicyError
from plugin.policy.cms_source import member_texts, read_manifest
from plugin.policy.model import CmsVersion, Gpci, MpfsSchedule, MueVersion
from plugin.policy.mpfs_file import RvuRow, read_rvu
from plugin.policy.mue_file import parse_mue

CMS_DIR = Path(__file__).parent / "data" / "cms"


@dataclass
class CmsTables:
    schedules: list[MpfsSchedule] = field(default_factory=list)
    gpcis: list[Gpci] = field(default_factory=list)
    mue: list[MueVersion] = field(default_factory=list)
    versions: list[CmsVersion] = field(default_factory=list)
    locality: str = ""


def _day(value: object, where: str) -> date:
    try:
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def schedule_from_rows(
    rows: list[RvuRow], effective: date, source: str, confidence: str
) -> MpfsSchedule:
    """An MPFS period from RVU rows: national amounts = (work + PE + MP) x CF, to the cent."""
    factor = rows[0].conversion_factor
    return MpfsSchedule(
        year=effective.year,
        effective_from=effective,
        conversion_factor=factor,
        amounts={r.code: round((r.work + r.pe + r.mp) * factor, 2) for r in rows},
        rvus={r.code: (r.work, r.pe, r.mp) for r in rows},
        source=source,
        confidence=confidence,
        status={r.code: r.status for r in rows},
        mppr=frozenset(r.code for r in rows if r.mult_proc == "5"),
    )


def _shipped(tables: CmsTables) -> None:
    index = CMS_DIR / "sources.toml"
    try:
        with index.open("rb") as fh:
            entries = tomllib.load(fh).get("file", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy file {index} cannot be read: {exc}") from None
    for entry in entries:
        path = CMS_DIR / entry["name"]
        where = f"data/cms/{entry['name']}"
        confidence, source = str(entry.get("confidence", "")), str(entry["source"])
        try:
            if entry["kind"] == "mpfs":
                table = read_rvu(path)
                effective = _day(entry.get("effective_from", table.effective), where)
                tables.schedules.append(
                    schedule_from_rows(table.rows, effective, source, confidence)
                )
            elif entry["kind"] == "mue":
                rows = parse_mue(member_texts(path, "MUE excerpt")[0][1], where)
                effective = _day(entry["effective_from"], where)
                units = {r.code: r.units for r in rows}
                tables.mue.append(MueVersion(effective, units, source, confidence))
            else:
                raise PolicyError(f"{index}: unknown kind {entry['kind']!r}")
        except InputError as exc:
            raise PolicyError(f"shipped CMS excerpt unreadable: {exc}") from None
        tables.versions.append(
            CmsVersion(entry["kind"], effective, "shipped excerpt", source, confidence)
        )


def _rows(path: Path) -> list[dict]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise PolicyError(f"imported policy file {path} cannot be read: {exc}") from None


def _imported(tables: CmsTables, folder: Path) -> None:
    manifest = read_manifest(folder)
    tables.locality = str(manifest.get("locality", ""))
    for name, entry in sorted(manifest.get("files", {}).items()):
        path = folder / name
        kind = entry.get("kind")
        if kind not in ("mue", "mpfs", "gpci") or not path.is_file():
            continue
        where = f"{path}"
        effective = _day(entry.get("effective"), where)
        source = str(entry.get("source", name))
        try:
            rows = _rows(path)
            if kind == "mue":
                units = {r["code"]: int(r["units"]) for r in rows}
                tables.mue.append(MueVersion(effective, units, source, "CMS file"))
            elif kind == "mpfs" and rows:
                parsed = [
                    RvuRow(
                        r["code"],
                        r["status"],
                        float(r["work"]),
                        float(r["pe"]),
                        float(r["mp"]),
                        r["mult_proc"],
                        float(r["conversion_factor"]),
                    )
                    for r in rows
                ]
                tables.schedules.append(schedule_from_rows(parsed, effective, source, "CMS file"))
            elif kind == "gpci":
                tables.gpcis += [
                    Gpci(r["locality"], r["name"], int(r["year"]), *map(float, _three(r)))
                    for r in rows
                ]
        except (KeyError, ValueError, TypeError) as exc:
            raise PolicyError(f"{where}: not an imported {kind} table ({exc!r})") from None
        tables.versions.append(CmsVersion(kind, effective, "imported", source, "CMS file"))


def _three(row: dict) -> tuple[str, str, str]:
    return row["work"], row["pe"], row["mp"]


def load_cms_tables(folder: Path | None) -> CmsTables:
    """The shipped excerpts, then the imports in ``folder`` (when it exists)."""
    tables = CmsTables()
    _shipped(tables)
    if folder is not None and folder.is_dir():
        _imported(tables, folder)
    return tables


def with_statuses(schedules: list[MpfsSchedule]) -> list[MpfsSchedule]:
    """Give a period read from mpfs.toml (amounts and RVUs only) the MPPR indicators of the
    nearest CMS RVU file: the latest that started on or before it, else the earliest. The
    therapy codes have carried indicator 5 since the MPPR began (2011); the periods from CMS
    files keep their own. (Status codes are read from the files alone: ``Mpfs.statuses_on``.)"""
    filed = sorted((s for s in schedules if s.status), key=lambda s: s.effective_from)
    if not filed:
        return schedules
    found = []
    for schedule in schedules:
        if not schedule.status and not schedule.mppr:
            earlier = [s for s in filed if s.effective_from <= schedule.effective_from]
            nearest = earlier[-1] if earlier else filed[0]
            schedule = replace(schedule, mppr=nearest.mppr)
        found.append(schedule)
    return found
