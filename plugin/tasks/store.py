"""The app's own FHIR Task store: SQLite by default, any SQLAlchemy URL (PostgreSQL) for several
app instances. Versioned resources; conditional create by identifier; If-Match updates.

Neither Epic nor Oracle Health lets an app create a Task today, so the coder queue and outside
tools read review Tasks from here with ordinary FHIR searches.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from plugin import schema
from plugin.db import make_engine
from plugin.errors import PluginError
from plugin.tasks.build import task_input, task_rules
from plugin.tasks.queries import after, filtered, order_by, sort_keys
from plugin.tasks.tables import metadata, tasks  # noqa: F401 - schema.metadata() reads it here

CHOICES_SECONDS = 15.0


class TaskStoreError(PluginError):
    """Base of the Task store's errors."""


class TaskNotFound(TaskStoreError):
    pass


class VersionConflict(TaskStoreError):
    """The Task changed since the caller read it (HTTP 412)."""


def _ident(task: dict) -> str:
    for ident in task.get("identifier") or []:
        if ident.get("system") and ident.get("value"):
            return f"{ident['system']}|{ident['value']}"
    raise TaskStoreError("a review Task needs an identifier (system and value)")


def _code(task: dict) -> str:
    for coding in (task.get("code") or {}).get("coding") or []:
        if coding.get("code"):
            return f"{coding.get('system', '')}|{coding['code']}"
    return ""


def _columns(task: dict) -> dict:
    rules = sorted(set(task_rules(task)))
    dollars = task_input(task, "dollars-at-risk")
    return {
        "identifier": _ident(task),
        "status": task.get("status", ""),
        "code": _code(task),
        "owner": (task.get("owner") or {}).get("reference")
        or (task.get("owner") or {}).get("display"),
        "patient": (task.get("for") or {}).get("reference"),
        "encounter": (task.get("encounter") or {}).get("reference"),
        "priority": task.get("priority"),
        "rules": ",".join(rules),
        "dollars_at_risk": float((dollars or {}).get("value", 0.0)),
        "therapist": task_input(task, "therapist"),
        "payer": task_input(task, "payer"),
        "service_date": task_input(task, "date-of-service"),
        "authored_on": task.get("authoredOn") or "",
        "issuer": task_input(task, "ehr"),
        "patient_name": task_input(task, "patient-name"),
        "patient_mrn": task_input(task, "patient-mrn"),
        "therapist_name": task_input(task, "therapist-name"),
        "reopened": bool(task_input(task, "reopened")),
    }


@dataclass(frozen=True)
class Stored:
    task: dict
    version: int

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


class TaskStore:
    """FHIR Task persistence on SQLAlchemy Core."""

    def __init__(self, url: str = "sqlite://") -> None:
        self.engine = make_engine(url)
        schema.prepare(self.engine)  # a new database made, an old one refused (db upgrade)
        # The queue's filter choices, kept briefly: dropped at once by this process's writes,
        # after CHOICES_SECONDS for other processes' (several app instances share the store).
        self._writes = 0
        self._choices: dict[tuple, tuple[int, float, dict]] = {}

    def _stored(self, row) -> Stored:
        return Stored(orjson.loads(row.body), row.version)

    def _write_body(self, task: dict, task_id: str, version: int, now: str) -> bytes:
        task = dict(task, id=task_id)
        task["meta"] = {**(task.get("meta") or {}), "versionId": str(version), "lastUpdated": now}
        return orjson.dumps(task)

    def create(self, task: dict, if_none_exist: bool = True) -> tuple[Stored, bool]:
        """Create the Task, or return the existing one with the same identifier (and False)."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        cols = _columns(task)
        with self.engine.begin() as conn:
            if if_none_exist:
                row = conn.execute(
                    sa.select(tasks).where(tasks.c.identifier == cols["identifier"])
                ).first()
                if row is not None:
                    return self._stored(row), False
            task_id = uuid.uuid4().hex
            body = self._write_body(task, task_id, 1, now)
            try:
                conn.execute(
                    tasks.insert().values(
                        id=task_id, version=1, last_updated=now, body=body, **cols
                    )
                )
            except sa.exc.IntegrityError:
                conn.rollback()
                return self.find_by_identifier(cols["identifier"]), False
        self._writes += 1
        return Stored(orjson.loads(body), 1), True

    def find_by_identifier(self, identifier: str) -> Stored:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.identifier == identifier)).first()
        if row is None:
            raise TaskNotFound(f"no Task with identifier {identifier}")
        return self._stored(row)

    def read(self, task_id: str) -> Stored:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).first()
        if row is None:
            raise TaskNotFound(f"no Task {task_id}")
        return self._stored(row)

    def update(self, task_id: str, task: dict, if_match: int | None) -> Stored:
        """Replace a Task; with ``if_match`` the stored version must still be that one."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).first()
            if row is None:
                raise TaskNotFound(f"no Task {task_id}")
            if if_match is not None and row.version != if_match:
                raise VersionConflict(
                    f"Task {task_id} is at version {row.version}, not {if_match}: someone else "
                    "changed it"
                )
            version = row.version + 1
            body = self._write_body(task, task_id, version, now)
            result = conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.version == row.version)
                .values(version=version, last_updated=now, body=body, **_columns(task))
            )
            if result.rowcount != 1:
                raise VersionConflict(f"Task {task_id} changed while it was being updated")
        self._writes += 1
        return Stored(orjson.loads(body), version)

    def update_each(self, changes: list[tuple[str, dict, int]]) -> dict[str, Stored | None]:
        """Several If-Match updates in one transaction, each on its own: a Task whose version is
        no longer the one given is left alone (None in the answer), the others are written.
        ``changes`` holds (task id, new Task, version read)."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        out: dict[str, Stored | None] = {}
        with self.engine.begin() as conn:
            for task_id, task, if_match in changes:
                body = self._write_body(task, task_id, if_match + 1, now)
                result = conn.execute(
                    tasks.update()
                    .where(tasks.c.id == task_id, tasks.c.version == if_match)
                    .values(version=if_match + 1, last_updated=now, body=body, **_columns(task))
                )
                out[task_id] = (
                    Stored(orjson.loads(body), if_match + 1) if result.rowcount == 1 else None
                )
        self._writes += 1
        return out

    def read_each(self, ids: list[str]) -> dict[str, Stored]:
        """The Tasks with these ids that exist, by id (one query)."""
        return {s.task["id"]: s for s in self._bodies(ids)}

    def search(self, *, sort: str = "-_lastUpdated", count: int = 100, offset: int = 0, **filters):
        """Tasks matching the filters (``plugin.tasks.queries.filtered``), sorted; returns
        (page, total)."""
        query = filtered(sa.select(tasks), **filters)
        # The page's ids first (sorted on the narrow columns only), then their bodies: sorting
        # whole rows would drag every matching body through the sort.
        ids_query = query.with_only_columns(tasks.c.id).order_by(*order_by(sort))
        with self.engine.connect() as conn:
            total = conn.execute(
                query.with_only_columns(sa.func.count()).select_from(tasks).order_by(None)
            ).scalar()
            ids = [r.id for r in conn.execute(ids_query.limit(count).offset(offset))]
        return self._bodies(ids), int(total or 0)

    def _bodies(self, ids: list[str]) -> list[Stored]:
        """The Tasks with these ids, in this order (those gone meanwhile left out)."""
        if not ids:
            return []
        with self.engine.connect() as conn:
            found = {
                r.id: r
                for r in conn.execute(
                    sa.select(tasks.c.id, tasks.c.body, tasks.c.version).where(tasks.c.id.in_(ids))
                )
            }
        return [self._stored(found[i]) for i in ids if i in found]

    def next_after(self, sort: str, after_id: str | None, **filters) -> Stored | None:
        """The first Task matching the filters that comes after Task ``after_id`` in ``sort``'s
        order (the first of all without ``after_id``, or when that Task is unknown)."""
        query = filtered(sa.select(tasks.c.id), **filters)
        with self.engine.connect() as conn:
            if after_id:
                keys = [c for c, _ in sort_keys(sort)]
                row = conn.execute(sa.select(*keys).where(tasks.c.id == after_id)).first()
                if row is not None:
                    values = {c.name: v for c, v in zip(keys, row, strict=True)}
                    nulls_smallest = self.engine.dialect.name != "postgresql"
                    query = query.where(after(sort, values, after_id, nulls_smallest))
            found = conn.execute(query.order_by(*order_by(sort)).limit(1)).first()
        return self._bodies([found.id])[0] if found else None

    def count(self, **filters) -> int:
        """How many Tasks match the filters (the same as ``search``'s)."""
        query = filtered(sa.select(sa.func.count()).select_from(tasks), **filters)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def choices(self, **filters) -> dict[str, list[str]]:
        """The values present among the matching Tasks, for the queue's filter menus: therapist
        names, payers, owners and rule ids, sorted."""
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items()))
        cached = self._choices.get(key)
        now = time.monotonic()
        if cached and cached[0] == self._writes and now - cached[1] < CHOICES_SECONDS:
            return cached[2]
        found = self._read_choices(filters)
        if len(self._choices) > 64:
            self._choices.clear()
        self._choices[key] = (self._writes, now, found)
        return found

    def _read_choices(self, filters: dict) -> dict[str, list[str]]:
        columns = (tasks.c.therapist_name, tasks.c.payer, tasks.c.owner, tasks.c.rules)
        query = filtered(sa.select(*columns), **filters)  # de-duplicated below
        seen: list[set[str]] = [set(), set(), set(), set()]
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                for values, value in zip(seen, row, strict=True):
                    if value:
                        values.add(value)
        rules = {r for joined in seen[3] for r in joined.split(",") if r}
        return {
            "therapist": sorted(seen[0]),
            "payer": sorted(seen[1]),
            "owner": sorted(seen[2]),
            "rule": sorted(rules),
        }
