"""Task API bearer tokens, each bound to one EHR and to the Task fields it may change.

``UNITGUARD_TASK_API_TOKENS`` holds one entry per outside tool, entries separated by spaces or
newlines, each ``NAME|TOKEN|ISSUER|FIELDS``:

    billing|3f9c...e1|https://fhir.example.org/api/FHIR/R4|status,owner,note

NAME names the tool in each Task's history; TOKEN is the bearer token (at least 20 characters);
ISSUER is the EHR's FHIR base exactly as in the EHR list: the token reads, searches and changes
only that EHR's Tasks; FIELDS, comma-separated, are the Task elements it may change (none: a
read-only token), from CHANGEABLE. ``note`` lets it add notes, never change or remove one (the
notes are the Task's history). The first format, bare tokens separated by commas, bound a
token to nothing: it is refused at start with one line that names this one.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

__all__ = ["CHANGEABLE", "ApiToken", "TokenFormatError", "changes", "find_token", "parse_tokens"]

# The elements a coder's tool has reason to change; the rest tie the Task to its EHR, patient,
# visit and review (issuer, for, encounter, identifier, input, ...) and never change by the API.
CHANGEABLE = frozenset({"status", "businessStatus", "statusReason", "owner", "priority", "note"})
SERVER_KEPT = frozenset({"resourceType", "id", "meta", "lastModified"})  # set by the store
MIN_TOKEN_LENGTH = 20
FORMAT = (
    "UNITGUARD_TASK_API_TOKENS holds entries NAME|TOKEN|ISSUER|FIELDS separated by spaces, e.g. "
    "billing|<a random token of 20+ characters>|https://ehr.example/fhir|status,owner,note"
)


class TokenFormatError(ValueError):
    """An entry of UNITGUARD_TASK_API_TOKENS is not NAME|TOKEN|ISSUER|FIELDS (one line)."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    token: str
    issuer: str
    fields: frozenset[str]

    def __repr__(self) -> str:  # never the token itself
        return f"ApiToken({self.name!r}, issuer={self.issuer!r}, fields={sorted(self.fields)})"


def parse_tokens(value: str) -> tuple[ApiToken, ...]:
    """The tokens of the variable's value; TokenFormatError names the first wrong entry by its
    position (never its token)."""
    found = []
    for number, entry in enumerate(value.split(), 1):
        parts = entry.split("|")
        if len(parts) != 4:
            raise TokenFormatError(f"entry {number} is not NAME|TOKEN|ISSUER|FIELDS: {FORMAT}")
        name, token, issuer, fields = parts
        if not name or not issuer.startswith(("https://", "http://")):
            raise TokenFormatError(f"entry {number} needs a name and an http(s) issuer: {FORMAT}")
        if len(token) < MIN_TOKEN_LENGTH:
            raise TokenFormatError(
                f"entry {number} ({name}): the token must have at least {MIN_TOKEN_LENGTH} "
                "characters"
            )
        chosen = frozenset(f for f in fields.split(",") if f)
        unknown = sorted(chosen - CHANGEABLE)
        if unknown:
            raise TokenFormatError(
                f"entry {number} ({name}): {', '.join(unknown)} cannot be changed by the Task "
                f"API; the fields are {', '.join(sorted(CHANGEABLE))}"
            )
        found.append(ApiToken(name, token, issuer, chosen))
    if len({t.token for t in found}) != len(found):
        raise TokenFormatError("UNITGUARD_TASK_API_TOKENS gives one token to two entries")
    return tuple(found)


def find_token(tokens: tuple[ApiToken, ...], sent: str) -> ApiToken | None:
    """The token entry the bearer token ``sent`` is, compared in constant time with each."""
    found = None
    for candidate in tokens:
        if hmac.compare_digest(sent.encode(), candidate.token.encode()):
            found = candidate
    return found


def changes(current: dict, proposed: dict) -> tuple[list[str], list[str]]:
    """(the elements a PUT of ``proposed`` over ``current`` changes, those among them no token
    may change that way). Notes may only be added: an existing note changed or removed is a
    change of the history."""
    changed, forbidden = [], []
    for key in sorted((set(current) | set(proposed)) - SERVER_KEPT):
        before, after = current.get(key), proposed.get(key)
        if before == after:
            continue
        changed.append(key)
        if key == "note":
            old = before if isinstance(before, list) else []
            if not isinstance(after, list) or after[: len(old)] != old:
                forbidden.append("note (a note can be added, never changed or removed)")
        elif key not in CHANGEABLE:
            forbidden.append(key)
    return changed, forbidden
