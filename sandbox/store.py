"""Versioned FHIR resources in SQLite (in memory by default), with the search columns we need."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime

import orjson

REF_FIELDS = {  # search parameter -> the resource fields holding that reference
    "patient": ("subject", "patient", "beneficiary", "for"),
    "subject": ("subject", "patient", "beneficiary", "for"),
    "beneficiary": ("beneficiary",),
    "encounter": ("encounter", "context"),
    "context": ("context",),
    "focus": ("focus",),
    "owner": ("owner",),
    "practitioner": ("practitioner",),
    "target": ("target",),
    "requester": ("requester",),
    "recipient": ("recipient",),
    "based-on": ("basedOn",),
}


class Conflict(Exception):
    """The stored version is not the one the caller named (HTTP 412)."""


def nested_refs(value: object) -> list[str]:
    """Every Reference in an element, however deep (performer[].actor, context.encounter[])."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            return [value["reference"]]
        return [r for v in value.values() for r in nested_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in nested_refs(v)]
    return []


def references(resource: dict, param: str) -> list[str]:
    found = []
    for field in REF_FIELDS.get(param, ()):
        found += nested_refs(resource.get(field))
    for item in resource.get("item") or []:  # Claim.item.encounter
        if param == "encounter" and isinstance(item, dict):
            found += nested_refs(item.get("encounter"))
    return found


def resource_date(resource: dict) -> str:
    for key in (
        "effectiveDateTime",
        "performedDateTime",
        "occurrenceDateTime",
        "date",
        "authoredOn",
        "created",
    ):
        if isinstance(resource.get(key), str):
            return resource[key]
    for key in ("period", "performedPeriod", "effectivePeriod", "billablePeriod"):
        if isinstance(resource.get(key), dict) and isinstance(resource[key].get("start"), str):
            return resource[key]["start"]
    return ""


class Store:
    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS res (type TEXT, id TEXT, version INTEGER, "
            "updated TEXT, body BLOB, PRIMARY KEY (type, id))"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS history (type TEXT, id TEXT, version INTEGER, body BLOB)"
        )
        self.lock = threading.RLock()

    def put(self, resource: dict, if_match: int | None = None) -> tuple[dict, int, bool]:
        """Create or update; returns (resource, version, created)."""
        rtype = resource["resourceType"]
        rid = resource.get("id") or uuid.uuid4().hex
        with self.lock:
            row = self.db.execute(
                "SELECT version FROM res WHERE type=? AND id=?", (rtype, rid)
            ).fetchone()
            if if_match is not None and (row is None or row[0] != if_match):
                raise Conflict(f"{rtype}/{rid} is at version {row[0] if row else 0}")
            version = (row[0] + 1) if row else 1
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            body = dict(
                resource,
                id=rid,
                meta={
                    **(resource.get("meta") or {}),
                    "versionId": str(version),
                    "lastUpdated": now,
                },
            )
            blob = orjson.dumps(body)
            self.db.execute(
                "INSERT OR REPLACE INTO res VALUES (?, ?, ?, ?, ?)",
                (rtype, rid, version, now, blob),
            )
            self.db.execute("INSERT INTO history VALUES (?, ?, ?, ?)", (rtype, rid, version, blob))
        return body, version, row is None

    def get(self, rtype: str, rid: str) -> tuple[dict, int] | None:
        row = self.db.execute(
            "SELECT body, version FROM res WHERE type=? AND id=?", (rtype, rid)
        ).fetchone()
        return (orjson.loads(row[0]), row[1]) if row else None

    def all(self, rtype: str) -> list[dict]:
        rows = self.db.execute(
            "SELECT body FROM res WHERE type=? ORDER BY updated, id", (rtype,)
        ).fetchall()
        return [orjson.loads(r[0]) for r in rows]

    def types(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT type FROM res").fetchall()]

    def version(self, rtype: str, rid: str, version: int) -> dict | None:
        """One stored version of a resource (vread)."""
        row = self.db.execute(
            "SELECT body FROM history WHERE type=? AND id=? AND version=?", (rtype, rid, version)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def history(self, rtype: str, rid: str) -> list[dict]:
        """Every stored version of a resource, newest first."""
        rows = self.db.execute(
            "SELECT body FROM history WHERE type=? AND id=? ORDER BY version DESC", (rtype, rid)
        ).fetchall()
        return [orjson.loads(r[0]) for r in rows]
