"""Reading the Binaries the visit notes keep their text in: only the EHR's own, at most
MAX_BINARY_READS, a failure a reading note."""

from __future__ import annotations

from collections.abc import Callable

from plugin.ehr.reader import FHIR_ID, FhirReader, reading_note
from plugin.errors import PluginError
from plugin.fhir.documents import KINDS, media_type, preferred_attachments
from smart_launch.errors import FhirError
from smart_launch.http import origin

# Binary reads for visit notes in one fetch: the reviewed visit's first, then the most recent
# earlier visits' (for the cloned-note rule); past this many, older notes are left unread.
MAX_BINARY_READS = 60


def _binary_id(url: str, base: str | None) -> tuple[str | None, str | None]:
    """(Binary id, None) for a url this server serves, else (None, why it is not read)."""
    if "://" in url:
        if base is None or origin(url) != origin(base):
            return None, "its attachment url is on another server; only the EHR's own is read"
        path = url.split("?")[0].split("#")[0]
    elif url.startswith("urn:"):
        return None, None  # a Bundle-local reference: nothing to read from the server
    else:
        path = url
    parts = path.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Binary" and FHIR_ID.fullmatch(parts[-1]):
        return parts[-1], None
    return None, None  # not a Binary: the extraction notes what it cannot read


def binary_reads(
    client: FhirReader, resources: dict[str, dict], encounter_id: str, outcomes: list[dict]
) -> list[Callable[[], object]]:
    """The reads of the Binaries the visits' notes keep their text in (``attachment.url``), for
    the round of practitioner reads. Only the server's own Binaries are read (a url on another
    origin would carry the token elsewhere; it becomes a note), one per note (its most readable
    format), and a failed read is a note, never a failure of the fetch."""
    base = getattr(client, "base_url", None)
    base = base if isinstance(base, str) and base else None
    starts = {
        key: str(_obj(r.get("period")).get("start") or "")
        for key, r in resources.items()
        if r.get("resourceType") == "Encounter"
    }
    notes = []
    for key, resource in resources.items():
        if resource.get("resourceType") != "DocumentReference":
            continue
        if resource.get("status") == "entered-in-error":
            continue
        refs = _obj(resource.get("context")).get("encounter")
        visits = [_obj(r).get("reference") for r in (refs if isinstance(refs, list) else [])]
        visits = [v for v in visits if isinstance(v, str) and v in starts]
        if visits:
            mine = f"Encounter/{encounter_id}" in visits
            notes.append((mine, max(starts[v] for v in visits), key, resource))
    notes.sort(key=lambda n: (n[0], n[1]), reverse=True)  # this visit's, then the most recent

    wanted: dict[str, str] = {}  # Binary id -> the DocumentReference whose text it holds
    for _, _, key, document in notes:
        attachments = preferred_attachments(document)
        if any(isinstance(a.get("data"), str) and a["data"] and _readable(a) for a in attachments):
            continue  # the text is embedded
        for attachment in attachments:
            url = attachment.get("url")
            if not isinstance(url, str) or not url.strip() or not _readable(attachment):
                continue
            rid, why = _binary_id(url.strip(), base)
            if why:
                outcomes.append(reading_note(f"{key}: {why}", key, "Binary", key))
            if rid and f"Binary/{rid}" not in resources:
                wanted.setdefault(rid, key)
            break
    if len(wanted) > MAX_BINARY_READS:
        skipped = len(wanted) - MAX_BINARY_READS
        outcomes.append(
            reading_note(
                f"{skipped} older visit notes kept as Binary were not read "
                f"(at most {MAX_BINARY_READS} per review)",
                "binary-limit",
            )
        )
        wanted = dict(list(wanted.items())[:MAX_BINARY_READS])
    return [(lambda r=rid, k=key: _read_binary(client, r, k)) for rid, key in wanted.items()]


def _obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _readable(attachment: dict) -> bool:
    mime, _ = media_type(attachment.get("contentType"))
    return not mime or mime in KINDS


def _read_binary(client: FhirReader, rid: str, document: str) -> dict:
    try:
        found = client.read("Binary", rid)
    except (PluginError, FhirError) as exc:
        why = f"{document}: Binary/{rid} could not be read ({exc})"
        return reading_note(why, f"Binary/{rid}", "Binary", document)
    if not isinstance(found, dict) or found.get("resourceType") != "Binary":
        why = f"{document}: Binary/{rid} is not a FHIR Binary"
        return reading_note(why, f"Binary/{rid}", "Binary", document)
    return found
