"""unitguard: checks that therapy documentation supports the billed timed units."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

__version__ = "0.1.0"

_HERE = Path(__file__).resolve().parent
_MANIFEST = _HERE / "_compiled.json"  # written by setup.py: compiled module -> source SHA-256


class _SourceFirst:
    """A finder that loads these modules from their .py source, ahead of a compiled extension
    of the same name (which Python's own finder would prefer)."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(self, fullname, path=None, target=None):
        source = self.sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _source_of(name: str) -> Path:
    return _HERE.joinpath(*name.split(".")[1:]).with_suffix(".py")


def _extension_modules() -> list[str]:
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = []
    for path in _HERE.rglob("*"):
        if path.name.endswith(suffixes):
            relative = path.relative_to(_HERE).parts
            stem = path.name.split(".", 1)[0]
            found.append(".".join(("plugin", *relative[:-1], stem)))
    return found


def _run_sources_where_needed() -> tuple[str, ...]:
    """Run a compiled module's source instead when asked (UNITGUARD_PURE=1) or when the source
    changed since it was compiled; the names of the changed ones."""
    if not _MANIFEST.exists():
        return ()
    pure = os.environ.get("UNITGUARD_PURE") == "1"
    try:
        compiled = json.loads(_MANIFEST.read_text())
    except (OSError, ValueError):
        # Unreadable: trust no extension; run the source of every module that has one.
        sys.stderr.write(f"unitguard: {_MANIFEST.name} is unreadable; running Python sources\n")
        compiled, pure = dict.fromkeys(_extension_modules(), ""), True
    sources, changed = {}, []
    for name, digest in compiled.items():
        source = _source_of(name)
        if pure:
            if source.exists():  # without a source beside it only the extension can run
                sources[name] = source
            continue
        try:
            same = hashlib.sha256(source.read_bytes()).hexdigest() == digest
        except OSError:
            continue
        if not same:
            sources[name] = source
            changed.append(name)
    if sources:
        sys.meta_path.insert(0, _SourceFirst(sources))
    if changed:
        sys.stderr.write(
            f"unitguard: {len(changed)} compiled module(s) changed since they were compiled "
            f"({', '.join(sorted(changed)[:3])}{', ...' if len(changed) > 3 else ''}); "
            "running their Python source. `pip install --no-deps -e .` compiles them again.\n"
        )
    return tuple(sorted(changed))


STALE_COMPILED = _run_sources_where_needed()
