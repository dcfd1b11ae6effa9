"""The search parameters the sandbox understands, applied to stored resources."""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox.store import references, resource_date

PREFIXES = ("ge", "le", "gt", "lt", "eq")


def _instant(value: str) -> datetime | None:
    """A dateTime with a time as an aware instant (no offset is read as UTC), else None."""
    if "T" not in value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _ref_matches(resource: dict, param: str, value: str) -> bool:
    wanted = {v.strip() for v in value.split(",")}
    refs = references(resource, param)
    return any(r in wanted or r.split("/")[-1] in wanted for r in refs)


def _compare(prefix: str, when, target) -> bool:
    return {
        "ge": when >= target,
        "le": when <= target,
        "gt": when > target,
        "lt": when < target,
        "eq": when == target,
    }[prefix]


def _date_matches(resource: dict, value: str) -> bool:
    prefix, target = ("eq", value)
    if value[:2] in PREFIXES:
        prefix, target = value[:2], value[2:]
    stored = resource_date(resource)
    if not stored:
        return False
    wanted, found = _instant(target), _instant(stored)
    if wanted is not None and found is not None:  # both with a time: compare instants
        return _compare(prefix, found, wanted)
    return _compare(prefix, stored[: len(target)], target)


def _token_matches(resource: dict, field: str, value: str) -> bool:
    if "," in value:  # a comma means OR
        return any(_token_matches(resource, field, v) for v in value.split(","))
    system, _, code = value.rpartition("|")
    concept = resource.get(field)
    concepts = concept if isinstance(concept, list) else [concept]
    for item in concepts:
        if isinstance(item, str):
            if item == code:
                return True
            continue
        for coding in (item or {}).get("coding") or []:
            if coding.get("code") == code and (not system or coding.get("system") == system):
                return True
    return False


def _identifier_matches(resource: dict, value: str) -> bool:
    system, _, code = value.rpartition("|")
    return any(
        i.get("value") == code and (not system or i.get("system") == system)
        for i in resource.get("identifier") or []
    )


def matches(resource: dict, param: str, value: str) -> bool:
    if param == "_id":
        return resource.get("id") in value.split(",")
    if param == "date":
        return _date_matches(resource, value)
    if param in ("status", "-status", "lifecycle-status"):
        key = "lifecycleStatus" if param == "lifecycle-status" else "status"
        return resource.get(key) in value.split(",")
    if param == "code":
        return _token_matches(resource, "code", value)
    if param == "category":
        return _token_matches(resource, "category", value)
    if param == "identifier":
        return _identifier_matches(resource, value)
    return _ref_matches(resource, param, value)


def sort_key(sort: str):
    descending = sort.startswith("-")
    field = sort.lstrip("-")

    def key(resource: dict):
        if field == "_lastUpdated":
            return (resource.get("meta") or {}).get("lastUpdated", "")
        if field in ("date", "authored-on"):
            return resource_date(resource)
        if field == "priority":
            return resource.get("priority", "")
        return resource.get(field, "")

    return key, descending
