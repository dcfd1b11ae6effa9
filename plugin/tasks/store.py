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

metadata = sa.MetaData()
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("identifier", sa.String(300), nullable=False, unique=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("code", sa.String(200), nullable=False, index=True),
    sa.Column("owner", sa.String(200), index=True),
    sa.Column("patient", sa.String(200), index=True),
    sa.Column("encounter", sa.String(200), index=True),
    sa.Column("priority", sa.String(16)),
    sa.Column("rules", sa.String(2000), nullable=False, default=""),
    sa.Column("therapist", sa.String(200), index=True),
    sa.Column("payer", sa.String(200), index=True),
    sa.Column("service_date", sa.String(10), index=True),
    sa.Column("dollars_at_risk", sa.Float, nullable=False, default=0.0),
    sa.Column("authored_on", sa.String(40), nullable=False),
    # Who may see it, and what the queue shows and searches (captured at sign-off).
    sa.Column("issuer", sa.String(300), index=True),
    sa.Column("patient_name", sa.String(200)),
    sa.Column("patient_mrn", sa.String(64)),
    sa.Column("therapist_name", sa.String(200), index=True),
    sa.Column("reopened", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("last_updated", sa.String(40), nullable=False, index=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # Covers every column the coder queue filters, sorts and offers as choices, so its queries
    # never read the wide rows (each carries the Task's body).
    sa.Index(
        "ix_tasks_queue",
        "issuer",
        "status",
        "dollars_at_risk",
        "service_date",
        "authored_on",
        "therapist_name",
        "payer",
        "owner",
        "reopened",
        "rules",
        "patient_name",
        "patient_mrn",
        "id",
    ),
)
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

    def search(
        self,
        *,
        status: list[str] | None = None,
        code: str | None = None,
        owner: str | None = None,
        patient: str | None = None,
        encounter: str | None = None,
        identifier: str | None = None,
        rule: str | None = None,
        therapist: str | None = None,
        payer: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        issuer: str | None = None,
        therapist_name: str | None = None,
        text: str | None = None,
        reopened: bool | None = None,
        sort: str = "-_lastUpdated",
        count: int = 100,
        offset: int = 0,
    ) -> tuple[list[Stored], int]:
        """Tasks matching the filters, sorted; returns (page, total)."""
        query = self._filtered(
            sa.select(tasks),
            status=status,
            code=code,
            owner=owner,
            patient=patient,
            encounter=encounter,
            identifier=identifier,
            rule=rule,
            therapist=therapist,
            payer=payer,
            date_from=date_from,
            date_to=date_to,
            issuer=issuer,
            therapist_name=therapist_name,
            text=text,
            reopened=reopened,
        )
        order = {
            "_lastUpdated": tasks.c.last_updated,
            "authored-on": tasks.c.authored_on,
            "dollars-at-risk": tasks.c.dollars_at_risk,
            "priority": tasks.c.priority,
            "date-of-service": tasks.c.service_date,
        }
        keys = []
        for part in sort.split(","):
            name = part.strip().lstrip("-")
            if name in order:
                keys.append(order[name].desc() if part.strip().startswith("-") else order[name])
        # The page's ids first (sorted on the narrow columns only), then their bodies: sorting
        # whole rows would drag every matching body through the sort.
        ids_query = query.with_only_columns(tasks.c.id).order_by(*keys, tasks.c.id)
        with self.engine.connect() as conn:
            total = conn.execute(
                query.with_only_columns(sa.func.count()).select_from(tasks).order_by(None)
            ).scalar()
            ids = [r.id for r in conn.execute(ids_query.limit(count).offset(offset))]
            found = (
                {
                    r.id: r
                    for r in conn.execute(
                        sa.select(tasks.c.id, tasks.c.body, tasks.c.version).where(
                            tasks.c.id.in_(ids)
                        )
                    )
                }
                if ids
                else {}
            )
        return [self._stored(found[i]) for i in ids if i in found], int(total or 0)

    @staticmethod
    def _filtered(
        query,
        *,
        status=None,
        code=None,
        owner=None,
        patient=None,
        encounter=None,
        identifier=None,
        rule=None,
        therapist=None,
        payer=None,
        date_from=None,
        date_to=None,
        issuer=None,
        therapist_name=None,
        text=None,
        reopened=None,
    ):
        if status:
            query = query.where(tasks.c.status.in_(status))
        if code:
            column = tasks.c.code
            query = query.where(column == code if "|" in code else column.like(f"%|{code}"))
        for column, value in (
            (tasks.c.owner, owner),
            (tasks.c.patient, patient),
            (tasks.c.encounter, encounter),
            (tasks.c.identifier, identifier),
            (tasks.c.therapist, therapist),
            (tasks.c.payer, payer),
            (tasks.c.issuer, issuer),
            (tasks.c.therapist_name, therapist_name),
        ):
            if value:
                query = query.where(column == value)
        if date_from:
            query = query.where(tasks.c.service_date >= date_from)
        if date_to:
            query = query.where(tasks.c.service_date <= date_to)
        if rule:
            wrapped = sa.literal(",") + tasks.c.rules + sa.literal(",")
            query = query.where(wrapped.like(f"%,{_escape_like(rule)},%", escape="\\"))
        if reopened is not None:
            query = query.where(tasks.c.reopened.is_(reopened))
        if text and text.strip():
            pattern = f"%{_escape_like(text.strip().lower())}%"
            query = query.where(
                sa.or_(
                    *(
                        sa.func.lower(sa.func.coalesce(column, "")).like(pattern, escape="\\")
                        for column in (
                            tasks.c.patient_name,
                            tasks.c.patient_mrn,
                            tasks.c.therapist_name,
                            tasks.c.payer,
                            tasks.c.rules,
                        )
                    )
                )
            )
        return query

    def count(self, **filters) -> int:
        """How many Tasks match the filters (the same as ``search``'s)."""
        query = self._filtered(sa.select(sa.func.count()).select_from(tasks), **filters)
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
        query = self._filtered(sa.select(*columns), **filters)  # de-duplicated below
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


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
