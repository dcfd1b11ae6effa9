"""The Task store's searches in SQL: the filters the coder queue and the FHIR API share, the
sort orders, and the keyset step to the Task after a given one in a sorted queue ("next")."""

from __future__ import annotations

import sqlalchemy as sa

from plugin.tasks.tables import tasks

UNASSIGNED = "none"  # owner filter: no coder holds the Task (the coding team, or nobody)
PERSON_PREFIXES = ("Practitioner/", "PractitionerRole/")

ORDER = {
    "_lastUpdated": tasks.c.last_updated,
    "authored-on": tasks.c.authored_on,
    "dollars-at-risk": tasks.c.dollars_at_risk,
    "priority": tasks.c.priority,
    "date-of-service": tasks.c.service_date,
}


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _unassigned() -> sa.ColumnElement[bool]:
    owner = tasks.c.owner
    return sa.or_(
        owner.is_(None), sa.and_(*(sa.not_(owner.startswith(p)) for p in PERSON_PREFIXES))
    )


def filtered(
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
    """``query`` narrowed to the Tasks that match every filter given. ``owner`` is a reference
    (or the owner's text), or ``"none"`` for the Tasks no coder holds."""
    if status:
        query = query.where(tasks.c.status.in_(status))
    if code:
        column = tasks.c.code
        query = query.where(column == code if "|" in code else column.like(f"%|{code}"))
    if owner == UNASSIGNED:
        query = query.where(_unassigned())
        owner = None
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
        query = query.where(wrapped.like(f"%,{escape_like(rule)},%", escape="\\"))
    if reopened is not None:
        query = query.where(tasks.c.reopened.is_(reopened))
    if text and text.strip():
        pattern = f"%{escape_like(text.strip().lower())}%"
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


def sort_keys(sort: str) -> list[tuple[sa.Column, bool]]:
    """The columns of a FHIR ``_sort`` value ("-dollars-at-risk,authored-on"), each with
    whether it sorts descending; unknown names are ignored."""
    keys = []
    for part in sort.split(","):
        name = part.strip().lstrip("-")
        if name in ORDER:
            keys.append((ORDER[name], part.strip().startswith("-")))
    return keys


def order_by(sort: str) -> list:
    """ORDER BY terms for ``sort``, with the id last so the order is total."""
    return [c.desc() if desc else c for c, desc in sort_keys(sort)] + [tasks.c.id]


def after(sort: str, values: dict, task_id: str, nulls_smallest: bool) -> sa.ColumnElement[bool]:
    """Rows that come after the row with these sort ``values`` and ``task_id`` in the order of
    ``order_by(sort)`` (keyset paging: one step, however deep in the queue). ``nulls_smallest``
    says where the database sorts NULL (SQLite: smallest; PostgreSQL: largest)."""
    keys = sort_keys(sort) + [(tasks.c.id, False)]
    terms = []
    for n, (column, desc) in enumerate(keys):
        value = task_id if column is tasks.c.id else values.get(column.name)
        equal = [
            c.is_(None) if values.get(c.name) is None else c == values[c.name] for c, _ in keys[:n]
        ]
        nulls_first = nulls_smallest != desc
        if value is None:
            if not nulls_first:
                continue  # nothing sorts beyond a NULL here
            beyond = column.is_not(None)
        else:
            beyond = column < value if desc else column > value
            if not nulls_first:
                beyond = sa.or_(beyond, column.is_(None))
        terms.append(sa.and_(*equal, beyond))
    return sa.or_(*terms)
