"""Reading the Binaries the visit notes keep their text in: only the EHR's own and those on the
hosts the EHR list names for it (``binary_hosts``), at most MAX_BINARY_READS, a failure a
reading note."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from plugin.ehr.reader import FHIR_ID, FhirReader, reading_note
from plugin.errors import PluginError
from plugin.fhir.documents import KINDS, media_type, preferred_attachments
from smart_launch.errors import FhirError
from smart_launch.http import origin

# Binary reads for visit notes in one fetch: the reviewed visit's first, then the most recent
# earlier visits' (for the cloned-note rule); past this many, older notes are left unread.
MAX_BINARY_READS = 60


def _binary_id(
    url: str, base: str | None, hosts: tuple[str, ...] = ()
) -> tuple[str | None, str | None, str | None]:
    """(Binary id, where to read it, None) for a url this server serves (where: None) or a host
    the EHR list names (``binary_hosts``) serves (where: the base before ``Binary/``), else
    (None, None, why it is not read: the note names the host, never the patient)."""
    elsewhere = None
    if "://" in url:
        path = url.split("?")[0].split("#")[0]
        if base is None or origin(url) != origin(base):
            parts = urlsplit(url)
            host = parts.netloc.lower() or "an unnamed host"
            why = None
            if host not in hosts:
                why = "a host the EHR list does not name for this EHR (binary_hosts)"
            elif parts.scheme != "https" and parts.scheme != urlsplit(base or "").scheme:
                why = f"named in binary_hosts but reached over {parts.scheme}, not https"
            if why:
                note = f"its note text is a Binary on {host}, {why}; not read, no token sent"
                return None, None, note
            elsewhere = path.split("/_history/")[0].rstrip("/").rsplit("/", 2)[0]
    elif url.startswith("urn:"):
        return None, None, None  # a Bundle-local reference: nothing to read from the server
    else:
        path = url
    segments = path.split("/_history/")[0].rstrip("/").split("/")
    if len(segments) >= 2 and segments[-2] == "Binary" and FHIR_ID.fullmatch(segments[-1]):
        return segments[-1], elsewhere, None
    return None, None, None  # not a Binary: the extraction notes what it cannot read


def binary_reads(
    client: FhirReader,
    resources: dict[str, dict],
    encounter_id: str,
    outcomes: list[dict],
    binary_hosts: tuple[str, ...] = (),
) -> list[Callable[[], object]]:
    """The reads of the Binaries the visits' notes keep their text in (``attachment.url``), for
    the round of practitioner reads. Only the server's own Binaries are read, and those on a
    host the EHR list names for this EHR (``binary_hosts``, over https or the EHR's own
    scheme): a url on any other host would carry the token elsewhere, so it becomes a note that
    names the host. One read per note (its most readable format); a failed read is a note,
    never a failure of the fetch."""
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

    hosts = tuple(h.lower() for h in binary_hosts)
    # (Binary id, the base it is read from or None for the EHR's own) -> the DocumentReference
    wanted: dict[tuple[str, str | None], str] = {}
    for _, _, key, document in notes:
        attachments = preferred_attachments(document)
        if any(isinstance(a.get("data"), str) and a["data"] and _readable(a) for a in attachments):
            continue  # the text is embedded
        for attachment in attachments:
            url = attachment.get("url")
            if not isinstance(url, str) or not url.strip() or not _readable(attachment):
                continue
            rid, elsewhere, why = _binary_id(url.strip(), base, hosts)
            if why:
                outcomes.append(reading_note(f"{key}: {why}", key, "Binary", key))
            if rid and f"Binary/{rid}" not in resources:
                wanted.setdefault((rid, elsewhere), key)
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
    return [
        (lambda r=rid, k=key, a=at: _read_binary(_reader_at(client, a), r, k))
        for (rid, at), key in wanted.items()
    ]


def _reader_at(client: FhirReader, base: str | None) -> FhirReader | None:
    """The reader for a Binary: the EHR's own, or one at a host the EHR list names (the same
    token); None when the reader cannot read elsewhere."""
    if base is None:
        return client
    at = getattr(client, "at", None)
    return at(base) if callable(at) else None


def _obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _readable(attachment: dict) -> bool:
    mime, _ = media_type(attachment.get("contentType"))
    return not mime or mime in KINDS


def _read_binary(client: FhirReader | None, rid: str, document: str) -> dict:
    if client is None:
        return reading_note(
            f"{document}: Binary/{rid} is on another host and this reader reads only the EHR's "
            "own; not read",
            f"Binary/{rid}",
        )
    try:
        found = client.read("Binary", rid)
    except (PluginError, FhirError) as exc:
        why = f"{document}: Binary/{rid} could not be read ({exc})"
        return reading_note(why, f"Binary/{rid}", "Binary", document)
    if not isinstance(found, dict) or found.get("resourceType") != "Binary":
        why = f"{document}: Binary/{rid} is not a FHIR Binary"
        return reading_note(why, f"Binary/{rid}", "Binary", document)
    return found
