"""The three passes of the audit, each a Dask task over files in a shared scratch folder.

Pass 1, one task per slice of an input file: parse each line, route it by a hash of its patient
to a bucket's spill file (practitioners and organisations go to a shared file).
A Binary (note text a DocumentReference points at) names no patient. One whose securityContext
names a Patient is routed to that patient's bucket; any other is spilled by a hash of its key
(or of the DocumentReference its securityContext names), and every DocumentReference spills a
link (the Binary or DocumentReference key, its patient's bucket) the same way. Pass 1b, one task
per such hash bucket, joins the two and copies each Binary into the buckets of the patients
whose notes point at it; memory is one hash bucket's links, never the whole export's.
Pass 2, one task per bucket: group its lines by patient (a Binary joins the patients whose
DocumentReference points at it), build one index per patient (a visit's history lives with its
patient), review each therapy encounter (plugin.fhir.therapy; the others are listed as
skipped), write the bucket's rows to part files, and spill every treatment slot (who treated
whom, when) by a hash of the therapist.
Pass 3, one task per therapist bucket: the batch rules (concurrent therapy across patients),
their findings written by the patient bucket of their visit.
"""

from __future__ import annotations

import csv
import gc
import hashlib
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson

from plugin.batch.ndjson import BadLine, patient_of
from plugin.errors import PluginError
from plugin.fhir.documents import binary_key
from plugin.fhir.encounters import encounter_ids
from plugin.fhir.extract import build_visit
from plugin.fhir.index import Index, obj, seq, text
from plugin.fhir.therapy import therapy_encounters
from plugin.policy import load_policy
from plugin.rules.batch import TreatmentSlot, review_slots, slots_of
from plugin.rules.engine import review

FINDING_FIELDS = (
    "encounter",
    "patient",
    "date",
    "therapist",
    "payer",
    "method",
    "rule",
    "severity",
    "code",
    "message",
    "dollars_at_risk",
)
VISIT_FIELDS = (
    "encounter",
    "patient",
    "date",
    "therapist",
    "payer",
    "verdict",
    "findings",
    "dollars_at_risk",
    "timed_minutes",
    "timed_units",
)
SLICE_BYTES = 16 << 20  # pass 1 reads input files in slices of about this size
# Resources outside any patient's compartment that a review reads: every bucket gets them.
SHARED_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location"})
SKIPPED = "skipped"  # the verdict of an encounter that is not a therapy visit (not reviewed)
_KEYS = Index([])  # reference normalisation (Type/id from relative or absolute URLs) only


def _bucket(key: str, buckets: int) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % buckets


# -- pass 1 ---------------------------------------------------------------------------------


def slices(files: list[Path], size: int = SLICE_BYTES) -> list[tuple[Path, int, int]]:
    """(file, start, end) byte ranges; a line belongs to the slice its first byte is in."""
    out = []
    for path in files:
        length = path.stat().st_size
        out += [(path, start, min(start + size, length)) for start in range(0, length, size)]
        if length == 0:
            out.append((path, 0, 0))
    return out


def route_slice(
    job: tuple[Path, int, int], number: int, scratch: Path, buckets: int
) -> list[tuple[str, int, str]]:
    """Pass 1 task: spill each line of one slice to its patient's bucket; returns the bad lines
    as (file, byte offset, problem) (line numbers are counted later, only for those)."""
    path, start, end = job
    bad = []
    handles: dict[int, object] = {}
    spills: dict[str, object] = {}  # Binaries and note links, by the name of their join file

    def spill(name: str, line: bytes) -> None:
        handle = spills.get(name)
        if handle is None:
            handle = spills[name] = (scratch / name).open("wb")
        handle.write(line)

    shared = scratch / f"shared-{number:05d}.ndjson"
    try:
        with path.open("rb") as fh, shared.open("wb") as shared_fh:
            if start:
                fh.seek(start - 1)
                fh.readline()  # a line that began before ``start`` belongs to the slice before
            offset = fh.tell()
            while offset < end:
                raw = fh.readline()
                if not raw:
                    break
                here, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                try:
                    resource = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    bad.append((path.name, here, f"not JSON ({exc})"))
                    continue
                if not isinstance(resource, dict) or not isinstance(
                    resource.get("resourceType"), str
                ):
                    bad.append((path.name, here, "not a FHIR resource"))
                    continue
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                rtype = resource["resourceType"]
                patient = patient_of(resource)
                if patient is None and rtype in SHARED_TYPES:
                    shared_fh.write(line)
                    continue
                if rtype == "Binary":
                    patient = binary_patient(resource)
                    if patient is None:
                        join = _bucket(binary_join_key(resource), buckets)
                        spill(f"m{join:05d}-{number:05d}.ndjson", line)
                        continue
                if patient is None:  # an Encounter without a subject is still reviewed, once
                    patient = f"{rtype}/{resource.get('id')}"
                target = _bucket(patient, buckets)
                if rtype == "DocumentReference":
                    for key in note_keys(resource):
                        join = _bucket(key, buckets)
                        spill(
                            f"l{join:05d}-{number:05d}.ndjson", orjson.dumps([key, target]) + b"\n"
                        )
                handle = handles.get(target)
                if handle is None:
                    name = f"b{target:05d}-{number:05d}.ndjson"
                    handle = handles[target] = (scratch / name).open("wb")
                handle.write(line)
    finally:
        for handle in [*handles.values(), *spills.values()]:
            handle.close()
    return bad


def binary_patient(binary: dict) -> str | None:
    """The patient id a Binary's securityContext names, if it names a Patient."""
    key = _KEYS.key(binary.get("securityContext"))
    return key.split("/", 1)[1] if key and key.startswith("Patient/") else None


def binary_join_key(binary: dict) -> str:
    """What a Binary is matched on: the DocumentReference its securityContext names, else
    its own ``Binary/ID``."""
    key = _KEYS.key(binary.get("securityContext"))
    if key and key.startswith("DocumentReference/"):
        return key
    return f"Binary/{text(binary.get('id'))}"


def note_keys(document: dict) -> list[str]:
    """The keys a Binary of this DocumentReference is matched on: the DocumentReference itself
    and each Binary its attachments point at."""
    keys = [f"DocumentReference/{text(document.get('id'))}"]
    for content in seq(document.get("content")):
        key = binary_key(_KEYS, obj(obj(content).get("attachment")))
        if key and key not in keys:
            keys.append(key)
    return keys


def join_binaries(join: int, scratch: Path) -> int:
    """Pass 1b task: copy each Binary of one join bucket into the patient buckets of the
    DocumentReferences that point at it (or that its securityContext names); returns how many
    Binaries no note points at (they are not needed by any review)."""
    targets: dict[str, set[int]] = defaultdict(set)
    for path in sorted(scratch.glob(f"l{join:05d}-*.ndjson")):
        with path.open("rb") as fh:
            for line in fh:
                key, bucket = orjson.loads(line)
                targets[key].add(bucket)
    unclaimed = 0
    handles: dict[int, object] = {}
    try:
        for path in sorted(scratch.glob(f"m{join:05d}-*.ndjson")):
            with path.open("rb") as fh:
                for line in fh:
                    binary = orjson.loads(line)
                    found = targets.get(binary_join_key(binary), set())
                    unclaimed += not found
                    for bucket in sorted(found):
                        handle = handles.get(bucket)
                        if handle is None:
                            name = f"b{bucket:05d}-j{join:05d}.ndjson"
                            handle = handles[bucket] = (scratch / name).open("wb")
                        handle.write(line)
    finally:
        for handle in handles.values():
            handle.close()
    return unclaimed


def line_numbers(bad: list[tuple[str, int, str]], source: Path) -> list[BadLine]:
    """Turn byte offsets into 1-based line numbers (reads only the files that had bad lines)."""
    found = []
    by_file: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for name, offset, problem in bad:
        by_file[name].append((offset, problem))
    for name, items in sorted(by_file.items()):
        items.sort()
        with (source / name).open("rb") as fh:
            line, position = 1, 0
            for offset, problem in items:
                line += fh.read(offset - position).count(b"\n")
                position = offset
                found.append(BadLine(name, line, problem))
    return found


# -- pass 2 ---------------------------------------------------------------------------------


def audit_bucket(
    bucket: int, scratch: Path, method: str | None, therapist_buckets: int
) -> list[tuple[str, int, str]]:
    """Pass 2 task: review every encounter of the bucket's patients; write visits-, findings-
    and slots- part files; returns visits that could not be reviewed as error rows."""
    policy = load_policy()
    shared = []
    for path in sorted(scratch.glob("shared-*.ndjson")):
        with path.open("rb") as fh:
            shared += [(orjson.loads(line), "") for line in fh]
    shared_index = Index(shared)
    by_patient: dict[str, list] = {}
    binaries: dict[str, dict] = {}
    gc_was_on = gc.isenabled()
    gc.disable()  # the parsed resources are acyclic; collections here only cost time
    try:
        for path in sorted(scratch.glob(f"b{bucket:05d}-*.ndjson")):
            with path.open("rb") as fh:
                for line in fh:
                    resource = orjson.loads(line)
                    if resource["resourceType"] == "Binary":
                        binaries[f"Binary/{text(resource.get('id'))}"] = resource
                        continue
                    key = patient_of(resource) or f"{resource['resourceType']}/{resource.get('id')}"
                    by_patient.setdefault(key, []).append((resource, ""))
        if binaries:
            _attach_binaries(by_patient, binaries)
        return _review_patients(
            bucket, scratch, method, therapist_buckets, policy, shared_index, by_patient
        )
    finally:
        if gc_was_on:
            gc.enable()


def _attach_binaries(by_patient: dict[str, list], binaries: dict[str, dict]) -> None:
    """Give each Binary to the patients whose DocumentReference points at it, or whose
    DocumentReference (or Patient) its securityContext names."""
    owners: dict[str, set[str]] = defaultdict(set)
    for patient, resources in by_patient.items():
        for resource, _ in resources:
            if resource["resourceType"] == "DocumentReference":
                for key in note_keys(resource):
                    owners[key].add(patient)
    for key, binary in binaries.items():
        found = owners.get(key, set()) | owners.get(binary_join_key(binary), set())
        patient = binary_patient(binary)
        if patient is not None and patient in by_patient:
            found.add(patient)
        for patient in sorted(found):
            by_patient[patient].append((binary, ""))


def _review_patients(bucket, scratch, method, therapist_buckets, policy, shared, by_patient):
    problems = []
    slot_files: dict[int, object] = {}
    visits_path = scratch / f"visits-{bucket:05d}.csv"
    findings_path = scratch / f"findings-{bucket:05d}.csv"
    with (
        visits_path.open("w", newline="", encoding="utf-8") as vfh,
        findings_path.open("w", newline="", encoding="utf-8") as ffh,
    ):
        visits_out = csv.DictWriter(vfh, VISIT_FIELDS, extrasaction="ignore")
        findings_out = csv.DictWriter(ffh, FINDING_FIELDS, extrasaction="ignore")
        try:
            for patient in sorted(by_patient):
                index = Index(by_patient[patient], base=shared)
                for encounter_id, visit, report in _reviewed(index, policy, method, problems):
                    if visit is None:
                        visits_out.writerow(_skipped_row(index, encounter_id))
                        continue
                    therapist = next((p.ref for s in visit.services for p in s.performers), None)
                    base = {
                        "encounter": visit.encounter,
                        "patient": visit.patient,
                        "date": visit.day.isoformat() if visit.day else None,
                        "therapist": therapist,
                        "payer": visit.payer,
                        "method": report.method,
                    }
                    visits_out.writerow(
                        {
                            **base,
                            "verdict": report.verdict,
                            "findings": len(report.findings),
                            "dollars_at_risk": round(report.dollars_at_risk, 2),
                            "timed_minutes": report.total_timed_minutes,
                            "timed_units": report.total_timed_units,
                        }
                    )
                    for f in report.findings:
                        findings_out.writerow(
                            {
                                **base,
                                "rule": f.rule,
                                "severity": f.severity.value,
                                "code": f.code,
                                "message": f.message,
                                "dollars_at_risk": round(f.dollars_at_risk, 2),
                            }
                        )
                    for slot in slots_of(visit, policy):
                        target = _bucket(slot.therapist, therapist_buckets)
                        handle = slot_files.get(target)
                        if handle is None:
                            name = f"s{target:05d}-{bucket:05d}.ndjson"
                            handle = slot_files[target] = (scratch / name).open("wb")
                        handle.write(_slot_line(slot, base, bucket))
        finally:
            for handle in slot_files.values():
                handle.close()
    return problems


def _reviewed(index: Index, policy, method, problems: list) -> list[tuple]:
    """(encounter id, visit, report) for each encounter of a patient's index, in order; a visit
    of None is an encounter that is not a therapy visit. One that could not be reviewed is left
    out and its problem added to ``problems``, in encounter order."""
    therapy = therapy_encounters(index, policy)
    done = []
    for encounter_id in sorted(set(encounter_ids(index))):
        if f"Encounter/{encounter_id}" not in therapy:
            done.append((encounter_id, None, None))
            continue
        visit, problem = _guarded(
            encounter_id, build_visit, index, policy, encounter_id=encounter_id, method=method
        )
        report = None
        if visit is not None:
            report, problem = _guarded(encounter_id, review, visit, policy)
        if problem is None:
            done.append((encounter_id, visit, report))
        else:
            problems.append(problem)
    return done


def _guarded(encounter: str, step, /, *args, **kwargs) -> tuple[object, tuple | None]:
    """``step(*args, **kwargs)`` and None, or None and the problem that stopped it (for the
    encounter with id ``encounter``): one visit must not end the audit."""
    try:
        return step(*args, **kwargs), None
    except PluginError as exc:
        return None, (f"Encounter/{encounter}", 0, str(exc))
    except Exception as exc:  # noqa: BLE001 - one visit must not end the audit
        why = f"could not be reviewed (internal error {type(exc).__name__})"
        return None, (f"Encounter/{encounter}", 0, why)


def _skipped_row(index: Index, encounter_id: str) -> dict:
    """The visits row of an encounter that is not a therapy visit: listed, not reviewed."""
    by_id = index.cached("encounters-by-id", _encounters_by_id, index)
    encounter = by_id[encounter_id]
    day = index.local_day(obj(encounter.get("period")).get("start"))
    return {
        "encounter": f"Encounter/{encounter_id}",
        "patient": index.key(encounter.get("subject")),
        "date": day.isoformat() if day else None,
        "verdict": SKIPPED,
        "findings": 0,
        "dollars_at_risk": 0,
    }


def _encounters_by_id(index: Index) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for encounter in index.by_type.get("Encounter", ()):
        found.setdefault(text(encounter.get("id")), encounter)
    return found


def _slot_line(slot: TreatmentSlot, base: dict, bucket: int) -> bytes:
    return (
        orjson.dumps(
            [
                slot.therapist,
                slot.patient,
                slot.encounter,
                slot.code,
                slot.start.isoformat(),
                slot.end.isoformat(),
                slot.group,
                slot.billed_units,
                slot.unit_price,
                base["patient"],
                base["therapist"],
                base["date"],
                base["payer"],
                base["method"],
                bucket,
            ]
        )
        + b"\n"
    )


# -- pass 3 ---------------------------------------------------------------------------------


def audit_therapists(therapist_bucket: int, scratch: Path) -> int:
    """Pass 3 task: the batch rules over every slot of the therapists in one bucket; findings
    go to part files by the patient bucket of their visit (folded in there at the merge)."""
    policy = load_policy()
    slots, context = [], {}
    for path in sorted(scratch.glob(f"s{therapist_bucket:05d}-*.ndjson")):
        with path.open("rb") as fh:
            for line in fh:
                row = orjson.loads(line)
                slot = TreatmentSlot(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    datetime.fromisoformat(row[4]),
                    datetime.fromisoformat(row[5]),
                    row[6],
                    row[7],
                    row[8],
                )
                slots.append(slot)
                context[slot.encounter] = (
                    {
                        "patient": row[9],
                        "therapist": row[10],
                        "date": row[11],
                        "payer": row[12],
                        "method": row[13],
                    },
                    row[14],
                )
    by_bucket: dict[int, list[dict]] = defaultdict(list)
    for encounter, f in review_slots(slots, policy):
        base, bucket = context[encounter]
        by_bucket[bucket].append(
            {
                "encounter": encounter,
                **base,
                "rule": f.rule,
                "severity": f.severity.value,
                "code": f.code,
                "message": f.message,
                "dollars_at_risk": round(f.dollars_at_risk, 2),
            }
        )
    for bucket, rows in by_bucket.items():
        path = scratch / f"x{bucket:05d}-{therapist_bucket:05d}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, FINDING_FIELDS, extrasaction="ignore").writerows(rows)
    return sum(len(rows) for rows in by_bucket.values())
