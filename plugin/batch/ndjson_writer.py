"""Write a synthetic Bulk export: one NDJSON file per resource type, the notes optionally in
Binary resources as Epic's export gives them."""

from __future__ import annotations

from pathlib import Path

import orjson


class NdjsonWriter:
    """One NDJSON file per resource type in ``out``; with ``binary_notes``, each note's text
    goes to Binary.ndjson and its DocumentReference points at it."""

    def __init__(self, out: Path, types: tuple[str, ...], binary_notes: bool) -> None:
        types = (*types, "Binary") if binary_notes else types
        self.files = {t: (out / f"{t}.ndjson").open("wb") for t in types}
        self.counts = dict.fromkeys(types, 0)
        self.binary_notes = binary_notes
        self.out = out

    def write(self, resource: dict, line: bytes | None = None) -> None:
        """Write a resource (or its already serialised ``line``)."""
        rtype = resource["resourceType"]
        if rtype not in self.files:  # a type the builders gained since
            self.files[rtype] = (self.out / f"{rtype}.ndjson").open("wb")
            self.counts[rtype] = 0
        if rtype == "DocumentReference" and self.binary_notes:
            resource, line = self._to_binary(orjson.loads(line) if line else resource), None
        self.files[rtype].write((line or orjson.dumps(resource)) + b"\n")
        self.counts[rtype] += 1

    def _to_binary(self, document: dict) -> dict:
        """Epic's way: the note's text in a Binary that the attachment's url points at, its
        securityContext naming the DocumentReference (no patient on the Binary's line)."""
        binary_id = f"{document['id']}-text"
        attachment = document["content"][0]["attachment"]
        binary = {
            "resourceType": "Binary",
            "id": binary_id,
            "contentType": attachment["contentType"],
            "securityContext": {"reference": f"DocumentReference/{document['id']}"},
            "data": attachment.pop("data"),
        }
        attachment["url"] = f"Binary/{binary_id}"
        self.write(binary)
        return document

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
