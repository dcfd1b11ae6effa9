"""The visit note's text (its DocumentReferences), and the notes of the patient's earlier visits."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from plugin.domain import EarlierVisit
from plugin.fhir.documents import document_text
from plugin.fhir.encounters import patient_encounters
from plugin.fhir.index import Index
from plugin.fhir.procedures import code_of, procedure_notes, procedures_of
from plugin.policy.model import Policy


def _document_text(index: Index, document: dict, key: str) -> str:
    """The document's text, embedded or in a Binary of the index (plugin.fhir.documents),
    decoded once per index, however many visits read it."""
    memo_key = ("text", id(document))
    return index.cached(memo_key, document_text, index, document, key)


def _documents_of(index: Index, encounter: str) -> list[dict]:
    return index.cached("documents", _documents_by_encounter, index).get(encounter, [])


def _documents_by_encounter(index: Index) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for d in index.by_type.get("DocumentReference", ()):
        if d.get("status") == "entered-in-error":
            continue
        context = d.get("context")
        references = context.get("encounter") if isinstance(context, dict) else None
        if not isinstance(references, list):
            continue
        if len(references) == 1:  # the common case: one encounter, nothing to deduplicate
            found[index.key(references[0])].append(d)
            continue
        for key in dict.fromkeys(index.key(e) for e in references):
            found[key].append(d)
    return found


def earlier_visits(
    index: Index, patient: str | None, encounter: str, day: date | None, policy: Policy
) -> list[EarlierVisit]:
    """The patient's other visits up to this one's date, each with its procedure notes and
    documents' text (for the cloned-note rule)."""
    earlier: dict[str, list[str]] = {}
    days: dict[str, date | None] = {}
    for _, key, other_day in patient_encounters(index, patient):
        if key == encounter:
            continue
        if day and other_day and other_day > day:
            continue
        earlier[key] = []
        days[key] = other_day
    if not earlier:
        return []
    documented = policy.documented
    visits = []
    for key, texts in earlier.items():  # each visit's procedure notes, then its documents
        for procedure in procedures_of(index, key):
            note = procedure_notes(procedure)
            if note and code_of(index, procedure) in documented:
                texts.append(note)
        for document in _documents_of(index, key):
            found = _document_text(index, document, f"DocumentReference/{document.get('id')}")
            if found:
                texts.append(found)
        visits.append(EarlierVisit(key, days[key], tuple(texts)))
    return visits


def visit_note(index: Index, encounter: str) -> tuple[list[dict], str]:
    """The encounter's DocumentReferences and their text, one after another."""
    documents = _documents_of(index, encounter)
    if not documents:
        return documents, ""
    if len(documents) == 1:  # one note (the common case) is its own text
        document = documents[0]
        document_id = document.get("id")
        key = f"DocumentReference/{document_id if isinstance(document_id, str) else ''}"
        return documents, _document_text(index, document, key)
    texts = []
    for document in documents:
        document_id = document.get("id")
        key = f"DocumentReference/{document_id if isinstance(document_id, str) else ''}"
        texts.append(_document_text(index, document, key))
    return documents, "\n".join(texts)
