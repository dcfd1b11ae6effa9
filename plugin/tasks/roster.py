"""The coders of each EHR, by name: the people a review Task may be assigned to.

Contract section 5: a Task's owner is one of the EHR's coders or nobody. The EHR entry lists
coders by reference (``coders``) and by PractitionerRole code (``coder_role_codes``). Those on
the list are known from the start (their names are read from the EHR when a coder signs in);
a coder through a role code becomes known when they first sign in, since no EHR the app targets
searches PractitionerRole by code. Kept in the Task store's database (table ``coders``,
migration 0002), so every app instance offers and accepts the same people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from plugin.tasks.tables import coders

PERSON_TYPES = ("Practitioner/", "PractitionerRole/")


@dataclass(frozen=True)
class Coder:
    reference: str  # "Practitioner/coder-1"
    name: str | None

    @property
    def label(self) -> str:
        """How pages show the coder: the name, else the reference."""
        return self.name or self.reference

    def owner(self) -> dict:
        """The coder as a FHIR Task owner."""
        return {**({"reference": self.reference} if self.reference else {}), "display": self.label}


def is_person(reference: str | None) -> bool:
    """Whether an owner reference names a person (an Organization or no owner: unassigned)."""
    return bool(reference) and str(reference).startswith(PERSON_TYPES)


class CoderRoster:
    """Who may own the Tasks of each EHR."""

    def __init__(self, engine: sa.Engine) -> None:
        """``engine``: the Task store's (whose ``schema.prepare`` made or checked the table)."""
        self.engine = engine

    def seed(self, issuer: str, listed: Iterable[str]) -> None:
        """The EHR entry's ``coders``: known (without a name) until someone reads their names."""
        known = {c.reference for c in self.coders(issuer)}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            {"issuer": issuer, "reference": ref, "name": None, "source": "list", "seen": now}
            for ref in dict.fromkeys(listed)
            if is_person(ref) and ref not in known
        ]
        for row in rows:
            try:
                with self.engine.begin() as conn:
                    conn.execute(coders.insert().values(**row))
            except sa.exc.IntegrityError:
                pass  # another app instance seeded the same coder meanwhile

    def record(self, issuer: str, reference: str, name: str | None, source: str) -> None:
        """A coder seen signing in (or a listed coder whose name was read): kept, name updated.
        A listed coder stays listed whatever else they hold."""
        if not is_person(reference):
            return
        name = (name or "")[:200] or None
        now = datetime.now(UTC).isoformat(timespec="seconds")
        key = (coders.c.issuer == issuer) & (coders.c.reference == reference)
        for _ in range(2):  # a second pass when another instance inserted the same coder
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(sa.select(coders.c.source).where(key)).first()
                    if row is None:
                        conn.execute(
                            coders.insert().values(
                                issuer=issuer,
                                reference=reference,
                                name=name,
                                source=source,
                                seen=now,
                            )
                        )
                        return
                    values: dict = {"seen": now, **({"name": name} if name else {})}
                    if row.source != "list":
                        values["source"] = source
                    conn.execute(coders.update().where(key).values(**values))
                    return
            except sa.exc.IntegrityError:
                continue

    def coders(self, issuer: str) -> list[Coder]:
        """The EHR's coders, by name (those without a name last, by reference)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(coders.c.reference, coders.c.name).where(coders.c.issuer == issuer)
            ).all()
        found = [Coder(r.reference, r.name) for r in rows]
        return sorted(found, key=lambda c: (c.name is None, (c.name or "").lower(), c.reference))

    def unnamed(self, issuer: str) -> list[str]:
        """References of the EHR's coders whose names are not known yet."""
        return [c.reference for c in self.coders(issuer) if not c.name]

    def find(self, issuer: str, reference: str) -> Coder | None:
        """The coder with this reference, if one of the EHR's; None for anyone else."""
        return next((c for c in self.coders(issuer) if c.reference == reference), None)
