"""Load the policy data files (TOML and CSV) shipped in ``plugin/policy/data``.

An organisation's own data folder (``UNITGUARD_POLICY_DIR``, or the folder given to
``load_policy``) may hold ``ptp_ncci.csv`` written by ``unitguard policy import-ncci``; its edits
are added to the starter set and win over it for the same pair. It may also hold the MUE, RVU
and GPCI tables written by ``import-mue`` and ``import-mpfs`` (read by ``cms_data``), which
take over from the shipped excerpts from their effective dates.
"""

from __future__ import annotations

import csv
import os
import tomllib
from datetime import date
from functools import lru_cache
from pathlib import Path

from plugin.errors import PolicyError
from plugin.policy.cms_data import CmsTables, load_cms_tables, with_statuses
from plugin.policy.model import (
    CmsVersion,
    EpisodePolicy,
    Gpci,
    KxYear,
    Mpfs,
    MpfsSchedule,
    NotCovered,
    PhraseList,
    Policy,
    Provenance,
    PtpEdit,
)

DATA_DIR = Path(__file__).parent / "data"
IMPORTED_PTP = "ptp_ncci.csv"
PTP_FIELDS = ("column1", "column2", "effective", "deletion", "modifier_indicator", "source")


def user_policy_dir() -> Path:
    """Where imported policy data lives: ``UNITGUARD_POLICY_DIR`` or the XDG data folder."""
    env = os.environ.get("UNITGUARD_POLICY_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "unitguard"


def _read_toml(name: str) -> dict:
    path = DATA_DIR / name
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy file {path} cannot be read: {exc}") from exc


def _day(value: object, where: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise PolicyError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _provenance(name: str, table: dict) -> Provenance:
    return Provenance(
        name=name,
        version=str(table.get("version", "")),
        source=str(table.get("source", "")),
        effective_from=_day(table.get("effective_from"), name),
        confidence=str(table.get("confidence", "")),
    )


def read_ptp_csv(path: Path) -> list[PtpEdit]:
    """Read PTP edits from our CSV layout (the starter file, or one written by import-ncci)."""
    edits = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), start=2):
                where = f"{path.name} line {lineno}"
                try:
                    edits.append(
                        PtpEdit(
                            column1=row["column1"].strip(),
                            column2=row["column2"].strip(),
                            effective=_day(row["effective"], where) or date(1996, 1, 1),
                            deletion=_day(row.get("deletion"), where),
                            modifier_indicator=row["modifier_indicator"].strip(),
                            source=row.get("source") or "",
                        )
                    )
                except (KeyError, AttributeError) as exc:
                    raise PolicyError(f"{where}: missing column {exc}") from exc
    except OSError as exc:
        raise PolicyError(f"PTP file {path} cannot be read: {exc}") from exc
    return edits


def _phrase_lists(narrative: dict) -> dict[str, PhraseList]:
    lists = {}
    for name, table in narrative.get("lists", {}).items():
        lists[name] = PhraseList(
            name=name,
            phrases=tuple(table.get("phrases", ())),
            negatable=bool(table.get("negatable", True)),
            label=str(table.get("label", "")),
        )
    return lists


def _mpfs(table: dict, cms: CmsTables) -> Mpfs:
    """The fee schedule: mpfs.toml's periods, GPCIs and where payers report, with the periods
    and GPCIs of the CMS files (shipped excerpts and imports)."""
    schedules = []
    for position, entry in enumerate(table.get("schedule", ())):
        where = f"mpfs.toml schedule[{position}]"
        try:
            schedules.append(
                MpfsSchedule(
                    year=int(entry["year"]),
                    effective_from=_day(entry["effective_from"], where)
                    or date(int(entry["year"]), 1, 1),
                    conversion_factor=float(entry["conversion_factor"]),
                    amounts={str(k): float(v) for k, v in entry.get("amounts", {}).items()},
                    rvus={
                        str(k): (float(v[0]), float(v[1]), float(v[2]))
                        for k, v in entry.get("rvus", {}).items()
                    },
                    source=str(entry.get("source", "")),
                    confidence=str(entry.get("confidence", "")),
                )
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PolicyError(f"{where}: {exc!r}") from exc
    try:
        gpcis = tuple(
            Gpci(
                str(g["locality"]),
                str(g.get("name", "")),
                int(g["year"]),
                float(g["work"]),
                float(g["pe"]),
                float(g["mp"]),
            )
            for g in table.get("gpci", ())
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"mpfs.toml gpci: {exc!r}") from exc
    gpcis += tuple(cms.gpcis)
    locality = cms.locality or str(table.get("locality", ""))
    if locality and not any(g.locality == locality for g in gpcis):
        raise PolicyError(f"mpfs.toml: locality {locality!r} has no GPCI entry")
    schedules = with_statuses(schedules + cms.schedules)
    ytd = table.get("ytd", {})
    adjudication = table.get("adjudication", {})
    return Mpfs(
        schedules=tuple(schedules),
        gpcis=gpcis,
        locality=locality,
        ytd_category_groups={str(k): str(v) for k, v in ytd.get("category_groups", {}).items()},
        ytd_coverage_extensions=tuple(
            (str(e["url"]), str(e["group"])) for e in ytd.get("coverage_extensions", ())
        ),
        allowed_categories=frozenset(adjudication.get("allowed", ("eligible",))),
        benefit_categories=frozenset(adjudication.get("benefit", ("benefit",))),
        patient_share_categories=frozenset(adjudication.get("patient_share", ())),
        mppr_pe_share=float(table.get("mppr", {}).get("pe_share", 0.5)),
    )


def _ptp_version(origin: str, source: str, edits: list[PtpEdit]) -> CmsVersion:
    first = min((e.effective for e in edits), default=date(1996, 1, 1))
    confidence = "CMS file" if origin == "imported" else "SECONDARY / UNVERIFIED (per pair)"
    return CmsVersion("ptp", first, origin, f"{source} ({len(edits)} edits)", confidence)


def _ptp_source(folder: Path) -> str:
    from plugin.policy.cms_source import read_manifest

    entry = read_manifest(folder).get("files", {}).get(IMPORTED_PTP, {})
    return str(entry.get("source") or IMPORTED_PTP)


@lru_cache(maxsize=8)
def load_policy(policy_dir: str | None = None) -> Policy:
    """Build the Policy from the shipped data plus an organisation's imported PTP edits."""
    units = _read_toml("units.toml")
    codes = _read_toml("codes.toml")
    limits = _read_toml("limits.toml")
    kx = _read_toml("kx.toml")
    assistant = _read_toml("assistant.toml")
    payers = _read_toml("payers.toml")
    narrative = _read_toml("narrative.toml")
    coverage = _read_toml("coverage.toml")
    episode = _read_toml("episode.toml")
    mpfs = _read_toml("mpfs.toml")

    ptp = read_ptp_csv(DATA_DIR / "ptp_starter.csv")
    imported = Path(policy_dir) if policy_dir else user_policy_dir()
    cms = load_cms_tables(imported)
    cms.versions.append(_ptp_version("shipped excerpt", "ptp_starter.csv", ptp))
    for year in sorted({int(g["year"]) for g in mpfs.get("gpci", ())}):
        cms.versions.append(
            CmsVersion(
                "gpci",
                date(year, 1, 1),
                "shipped table",
                f"mpfs.toml gpci, the values of CMS GPCI{year}.csv",
                str(mpfs.get("gpci_confidence", "")),
            )
        )
    if (imported / IMPORTED_PTP).is_file():
        edits = read_ptp_csv(imported / IMPORTED_PTP)
        ptp += edits
        cms.versions.append(_ptp_version("imported", _ptp_source(imported), edits))

    kx_years = {
        int(y["year"]): KxYear(
            int(y["year"]), float(y["pt_slp"]), float(y["ot"]), y["source"], y["confidence"]
        )
        for y in kx.get("year", ())
    }
    medicare = payers.get("medicare", {})
    return Policy(
        first_unit_minutes=int(units["first_unit_minutes"]),
        unit_minutes=int(units["unit_minutes"]),
        default_method=str(payers.get("default_method", units["default_method"])),
        method_citations={k: v["citation"] for k, v in units["methods"].items()},
        timed=frozenset(codes["timed"]),
        untimed=frozenset(codes["untimed"]),
        group=frozenset(codes["group"]),
        untimed_exclusive=frozenset(codes["untimed_exclusive"]),
        documented=frozenset(codes["documented"]),
        discipline_modifiers=dict(codes["discipline_modifiers"]),
        assistant_modifiers=dict(codes["assistant_modifiers"]),
        distinct_modifiers=frozenset(codes["distinct_modifiers"]["codes"]),
        session_modifiers=frozenset(codes["distinct_modifiers"]["session_codes"]),
        per_day_units={k: int(v) for k, v in limits["per_day_units"].items()},
        untimed_units_per_day=int(codes["untimed_units"]["per_day"]),
        untimed_unit_exceptions={
            k: int(v) for k, v in codes["untimed_units"].get("exceptions", {}).items()
        },
        episode=EpisodePolicy(
            payers=tuple(str(p).lower() for p in episode.get("payers", ())),
            certification_days=int(episode["certification_days"]),
            max_interval_days=int(episode["max_interval_days"]),
            progress_report_days=int(episode["progress_report_days"]),
            order_exception_days=int(episode["order_exception_days"]),
            recert_warning_days=int(episode["recert_warning_days"]),
            certifiers=frozenset(episode["certifiers"]),
            report_writers=frozenset(episode["report_writers"]),
            plan_of_care_loinc=frozenset(episode["plan_of_care_loinc"]),
            progress_report_loinc=frozenset(episode["progress_report_loinc"]),
            not_progress_report_loinc=frozenset(episode["not_progress_report_loinc"]),
        ),
        not_covered=tuple(
            NotCovered(
                str(n["payer"]).lower(), str(n["code"]), str(n["instead"]), n["why"], n["source"]
            )
            for n in coverage.get("not_covered", ())
        ),
        not_paid_statuses={
            str(k): str(v) for k, v in coverage.get("mpfs_status", {}).get("not_paid", {}).items()
        },
        mue=tuple(sorted(cms.mue, key=lambda m: m.effective_from)),
        cms_versions=tuple(cms.versions),
        kx_modifier=str(kx["kx_modifier"]),
        kx_years=kx_years,
        review_threshold=float(kx["review_threshold"]),
        de_minimis_share=float(assistant["de_minimis_share"]),
        assistant_payment_share=float(assistant["payment_share"]),
        ptp=tuple(ptp),
        payer_methods=tuple((p["match"].lower(), p["method"]) for p in payers.get("payer", ())),
        medicare_sopt_system=str(medicare.get("sopt_system", "")),
        medicare_sopt_prefix=str(medicare.get("sopt_prefix", "1")),
        medicare_names=tuple(n.lower() for n in medicare.get("name_contains", ())),
        phrase_lists=_phrase_lists(narrative),
        negation_window=int(narrative["negation_window"]),
        pre_negation=frozenset(narrative["pre_negation"]),
        post_negation=tuple(narrative["post_negation"]),
        cloned_similarity=float(narrative["cloned_similarity"]),
        cloned_min_words=int(narrative["cloned_min_words"]),
        concurrent_min_overlap=int(limits["concurrent"]["min_overlap_minutes"]),
        provenance=tuple(
            _provenance(name, table)
            for name, table in (
                ("units", units),
                ("codes", codes),
                ("limits", limits),
                ("kx", kx),
                ("assistant", assistant),
                ("payers", payers),
                ("narrative", narrative),
                ("coverage", coverage),
                ("episode", episode),
                ("mpfs", mpfs),
            )
        ),
        mpfs=_mpfs(mpfs, cms),
        medicare_advantage_sopt_prefixes=tuple(
            str(p) for p in medicare.get("advantage", {}).get("sopt_prefixes", ())
        ),
        medicare_advantage_names=tuple(
            str(n).lower() for n in medicare.get("advantage", {}).get("name_contains", ())
        ),
    )
