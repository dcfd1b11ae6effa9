"""A Bundle's resources indexed by reference, and the small readers every extractor shares.

Every reader here is defensive: FHIR from the wild may carry a string where an object belongs,
and a wrong shape reads as "absent", never as a crash.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, tzinfo
from math import isfinite
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugin.errors import InputError
from plugin.fhir.unread import unread_of

T = TypeVar("T")

CPT_SYSTEMS = frozenset(
    {
        "http://www.ama-assn.org/go/cpt",
        "https://www.ama-assn.org/go/cpt",
        "urn:oid:2.16.840.1.113883.6.12",
    }
)
HCPCS_SYSTEMS = frozenset(
    {
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "urn:oid:2.16.840.1.113883.6.285",
    }
)
ORACLE_BILL_CODE_SUFFIXES = ("BillCodes-CPT", "BillCodes-HCPCS")


def obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def seq(value: object) -> list:
    return value if isinstance(value, list) else []


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def number(value: object) -> float | None:
    """A JSON number as a float; None for anything else (a bool, NaN or an infinity too)."""
    if isinstance(value, float):
        return float(value) if isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return None


def parse_instant(value: object, zone: tzinfo = UTC) -> datetime | None:
    """A FHIR dateTime with a time part as an aware datetime; a time without an offset is read
    in ``zone`` (callers with an Index use ``Index.instant``, which picks the zone and notes it)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def has_offset(raw: str) -> bool:
    """Whether a FHIR dateTime string with a time part names its offset (Z or +hh:mm)."""
    if "T" not in raw:
        return False
    return raw[-1] == "Z" or (len(raw) > 6 and raw[-6] in "+-" and raw[-3] == ":")


def start_order(raw: object, moment: datetime | None) -> float:
    """A period start as a sortable number: the instant read from it (``moment``), else a date
    alone at its midnight UTC, else before everything (no start, or one that is no dateTime)."""
    if moment is None:
        day = parse_day(raw)
        if day is None:
            return float("-inf")
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment.timestamp()


def configured_timezone() -> tuple[tzinfo | None, str]:
    """The organisation's time zone from ``UNITGUARD_TIMEZONE`` (an IANA name), if set."""
    name = os.environ.get("UNITGUARD_TIMEZONE", "").strip()
    if not name:
        return None, ""
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"UNITGUARD_TIMEZONE={name!r} is not a known time zone; ignored"


def parse_day(value: object) -> date | None:
    """The date part of a FHIR date or dateTime (a year or year-month alone gives None)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def is_billing_code_system(system: str) -> bool:
    return (
        system in CPT_SYSTEMS
        or system in HCPCS_SYSTEMS
        or system.endswith(ORACLE_BILL_CODE_SUFFIXES)
    )


def billing_code(concept: object) -> str | None:
    """The CPT/HCPCS code of a CodeableConcept, if it has one."""
    # Written out (no obj/seq/text calls): it runs for every procedure, line and charge.
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if not isinstance(codings, list):
        return None
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        code, system = coding.get("code"), coding.get("system")
        if isinstance(code, str) and isinstance(system, str) and is_billing_code_system(system):
            code = code.strip()
            if code:
                return code.upper()
    return None


def concept_key(concept: object) -> str:
    """``system|code`` of the first coding of a CodeableConcept, else its text."""
    # Written out (no obj/seq/text calls): it runs for every measure and many codes.
    if not isinstance(concept, dict):
        return ""
    codings = concept.get("coding")
    for coding in codings if isinstance(codings, list) else ():
        code = coding.get("code") if isinstance(coding, dict) else None
        if isinstance(code, str) and code:
            system = coding.get("system")
            return f"{system if isinstance(system, str) else ''}|{code}"
    label = concept.get("text")
    return label.strip().lower() if isinstance(label, str) else ""


def concept_text(concept: object) -> str:
    """The text and the codings' displays of a CodeableConcept, joined by spaces."""
    if not isinstance(concept, dict):
        return ""
    label = concept.get("text")
    codings = concept.get("coding")
    if not codings or not isinstance(codings, list):  # the text alone (often all there is)
        return label if isinstance(label, str) else ""
    parts = [label] if isinstance(label, str) and label else []
    for coding in codings:
        display = coding.get("display") if isinstance(coding, dict) else None
        if isinstance(display, str) and display:
            parts.append(display)
    return " ".join(parts)


def extension_values(resource: object, url_suffix: str) -> list[dict]:
    """The extensions of a resource or element whose url ends with ``url_suffix``."""
    extensions = resource.get("extension") if isinstance(resource, dict) else None
    if not isinstance(extensions, list):
        return []
    if not url_suffix:  # an empty suffix matches every extension, one not an object as {}
        return [obj(ext) for ext in extensions]
    found = []
    for ext in extensions:
        url = ext.get("url") if isinstance(ext, dict) else None
        if isinstance(url, str) and url.endswith(url_suffix):
            found.append(ext)
    return found


_UNSET = object()  # Index.cached: no value made yet


class Index:
    """The resources of one Bundle (or any list of resources), found by their references."""

    def __init__(
        self,
        resources: Iterable[tuple[dict, str]],
        notes: list[str] | None = None,
        base: Index | None = None,
    ) -> None:
        """``base``: an index of resources many indexes share (the audit's practitioners),
        copied in at C speed instead of walked again for every patient."""
        if base is None:
            self.by_key: dict[str, dict] = {}
            self.by_type: dict[str, list[dict]] = defaultdict(list)
            self.aliases: dict[str, str] = {}
        else:
            self.by_key = dict(base.by_key)
            self.by_type = defaultdict(list)
            self.by_type.update((t, list(found)) for t, found in base.by_type.items())
            self.aliases = dict(base.aliases)
        self.notes: list[str] = notes if notes is not None else []
        self.unread: list = []  # what the fetch could not read (plugin/fhir/unread.py)
        # reference -> key (Index.key); a string that names no key is kept as None
        self._keys: dict[object, str | None] = {}
        # Derived views (documents by encounter, a patient's billed lines, ...) computed once per
        # index: a patient with a year of visits would otherwise re-derive them for every visit.
        self.memo: dict = {}
        # The zone a time without an offset is read in: UNITGUARD_TIMEZONE, else the offset
        # the same Bundle uses elsewhere, else UTC (decided on first use, with a note).
        self._zone: tuple[tzinfo, str] | None = None
        # The configured zone a UTC instant's date is read in (local_day), read on first use:
        # (None,) when UNITGUARD_TIMEZONE names none.
        self._day_zone: tuple[tzinfo | None] | None = None
        by_type, by_key, aliases = self.by_type, self.by_key, self.aliases
        for resource, full_url in resources:
            rtype = resource.get("resourceType")
            if not isinstance(rtype, str) or not rtype:
                continue
            rid = resource.get("id")
            key = f"{rtype}/{rid}" if isinstance(rid, str) and rid else full_url
            if not key:
                continue
            if resource.get("contained"):  # rare: most resources contain nothing
                resource = _with_contained(resource, key, by_key, aliases)
            by_type[rtype].append(resource)
            by_key[key] = resource
            if full_url:
                aliases[full_url] = key

    def zone(self) -> tuple[tzinfo, str]:
        """The zone for times without an offset, and how it was chosen (for the note)."""
        if self._zone is None:
            zone, label = configured_timezone()
            if zone is None:
                if label:
                    self.note(label)
                zone, label = self._bundle_offset()
            self._zone = (zone, label)
        return self._zone

    def quiet_zone(self) -> tzinfo:
        """The zone ``zone`` reads times without an offset in, found without a note and without
        keeping it: for readers that must leave the index as they found it."""
        if self._zone is not None:
            return self._zone[0]
        zone = configured_timezone()[0]
        return zone if zone is not None else self._bundle_offset()[0]

    def _bundle_offset(self) -> tuple[tzinfo, str]:
        for rtype in ("Encounter", "Procedure", "Observation"):
            for resource in self.by_type.get(rtype, ()):
                for raw in (
                    text(obj(resource.get("period")).get("start")),
                    text(obj(resource.get("performedPeriod")).get("start")),
                    text(resource.get("performedDateTime")),
                    text(resource.get("effectiveDateTime")),
                ):
                    if has_offset(raw) and not raw.endswith("Z"):
                        try:
                            moment = datetime.fromisoformat(raw)
                        except ValueError:
                            continue  # not a dateTime: its own reader notes it where it is read
                        if moment.tzinfo is not None:
                            return moment.tzinfo, f"the offset {raw[-6:]} used elsewhere in it"
        return UTC, "UTC (no UNITGUARD_TIMEZONE and no offset elsewhere in the Bundle)"

    def instant(self, value: object, where: str) -> datetime | None:
        """``parse_instant`` in the organisation's zone; a time without offset is noted."""
        if not isinstance(value, str) or "T" not in value:
            return None
        if not has_offset(value):
            zone, label = self.zone()
            self.note(f"{where} has a time without an offset; read in {label}")
            return parse_instant(value, zone)
        return parse_instant(value)

    def local_day(self, value: object) -> date | None:
        """The date of service of a FHIR date or dateTime: the local date in the instant's own
        offset (an evening visit at -05:00 stays on its day); a UTC instant is moved into the
        organisation's zone when one is configured."""
        if not isinstance(value, str):
            return None
        if value.endswith(("Z", "+00:00")):
            day_zone = self._day_zone
            if day_zone is None:
                day_zone = self._day_zone = (configured_timezone()[0],)
            zone = day_zone[0]
            moment = parse_instant(value)
            if zone is not None and moment is not None:
                return moment.astimezone(zone).date()
        return parse_day(value)

    def cached(self, key: object, make: Callable[..., T], *args: object) -> T:
        """``make(*args)`` once per index and key (the index is not changed after it is
        built). The arguments are passed, not closed over: no closure is made per call."""
        found = self.memo.get(key, _UNSET)
        if found is _UNSET:
            found = self.memo[key] = make(*args)
        return found  # type: ignore[return-value]

    def key(self, reference: object) -> str | None:
        """Normalise a Reference (object or string) to ``Type/id``; None when it is empty.
        Each reference is normalised once per index (the same few recur throughout); one that
        names no key (empty, or ``#`` for a contained resource) is normalised again, cheaply."""
        if isinstance(reference, dict):
            reference = reference.get("reference")
        try:
            found = self._keys.get(reference)  # not [] and KeyError: each first use misses
        except TypeError:  # an unhashable value (a list or an object) is no reference
            return None
        if found is None and isinstance(reference, str):
            found = self._keys[reference] = self._normalise(reference)
        return found

    def _normalise(self, ref: str) -> str | None:
        if not ref or ref[0] == "#":
            return None
        if ref.count("/") == 1 and ref not in self.aliases:  # the common form, Type/id
            return ref
        alias = self.aliases.get(ref)
        if alias is not None:
            return alias
        ref = ref.split("/_history/")[0]
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2 and not ref.startswith("urn:"):
            return f"{parts[-2]}/{parts[-1]}"
        return ref

    def resolve(self, reference: object, where: str) -> tuple[str | None, dict | None]:
        """The key and resource a reference points at; a dangling one is noted, not raised."""
        key = self.key(reference)
        if key is None:
            return None, None
        found = self.by_key.get(key)
        if found is None:
            self.note(f"{where} refers to {key}, which is not in the Bundle")
        return key, found

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)


def _with_contained(
    resource: dict, key: str, by_key: dict[str, dict], aliases: dict[str, str]
) -> dict:
    """A resource with ``contained`` resources, its ``#id`` references made resolvable (contract
    section 2: they name the contained resources of the resource that holds them).

    Each contained resource is indexed by key only, as ``{key}#{id}`` (it is part of its holder,
    never a resource of the visit on its own), and every reference ``#id`` inside the holder and
    its contained resources is rewritten to that key (``#`` alone names the holder). The caller's
    resource is left as it was: the holder is copied."""
    holder = _rewrite_local(resource, key)
    for item in seq(holder.get("contained")):
        cid = item.get("id") if isinstance(item, dict) else None
        if isinstance(cid, str) and cid and isinstance(item.get("resourceType"), str):
            by_key[f"{key}#{cid}"] = item
            if key.count("/") != 1:  # a holder known by its fullUrl: the key is kept whole
                aliases[f"{key}#{cid}"] = f"{key}#{cid}"
    return holder


def _rewrite_local(node: object, key: str) -> object:
    """A copy of ``node`` with every Reference.reference ``#id`` written ``{key}#id``."""
    if isinstance(node, dict):
        copied = {k: _rewrite_local(v, key) for k, v in node.items()}
        ref = copied.get("reference")
        if isinstance(ref, str) and ref.startswith("#"):
            copied["reference"] = key if ref == "#" else f"{key}{ref}"
        return copied
    if isinstance(node, list):
        return [_rewrite_local(v, key) for v in node]
    return node


def index_bundle(bundle: object) -> Index:
    """Index a parsed Bundle; raises InputError when it is not a Bundle at all."""
    if not isinstance(bundle, dict):
        raise InputError(f"expected a FHIR Bundle object, found a JSON {type(bundle).__name__}")
    rtype = bundle.get("resourceType")
    if rtype != "Bundle":
        raise InputError(f"expected resourceType 'Bundle', found {rtype!r}")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InputError("Bundle.entry is not a list")
    notes: list[str] = []
    unread: list = []
    index = Index(_entry_resources(entries, notes, unread), notes)
    index.unread = unread
    return index


def _entry_resources(entries: list, notes: list[str], unread: list) -> Iterator[tuple[dict, str]]:
    """Each entry's resource with its fullUrl ("" when none), as Index takes them, in one pass
    with the indexing; an entry without a resource and a server's OperationOutcome become
    notes."""
    for position, entry in enumerate(entries):
        try:
            resource = entry["resource"]
            rtype = resource["resourceType"]
        except (KeyError, TypeError):
            # Not an object holding a resource with a type: no resource is noted, a resource
            # without a type is skipped. (A JSON string, list, number or null subscripted by a
            # key raises TypeError, so past this point the entry and resource are objects.)
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                notes.append(f"Bundle.entry[{position}] has no resource; skipped")
            continue
        if rtype == "OperationOutcome":
            unread += unread_of(resource)
            for issue in seq(resource.get("issue")):
                issue = obj(issue)
                said = text(issue.get("diagnostics")) or concept_text(issue.get("details"))
                notes.append(f"server note ({text(issue.get('severity')) or 'info'}): {said}")
            continue
        full_url = entry.get("fullUrl")
        yield resource, full_url if isinstance(full_url, str) else ""
