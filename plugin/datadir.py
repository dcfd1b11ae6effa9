"""The data folder (``UNITGUARD_DATA_DIR``): where ``serve`` keeps its SQLite database and any
other file it writes, private to the user that runs it.

The folder is made 0700 when missing; an existing one open to other users is refused (the
message says what to chmod, since the folder may hold more than ours); the files in it are ours
and are made 0600. Nothing the app keeps goes to the working directory or to HOME.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from plugin.errors import PluginError

DATABASE_FILE = "unitguard.sqlite"
PRIVATE_UMASK = 0o077


class DataDirError(PluginError):
    """The data folder cannot be used; the message names it and what to do."""


def sqlite_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir) / DATABASE_FILE}"


def open_data_dir(path: str | Path) -> Path:
    """Make (0700) or check the folder, tighten our files to 0600, and make sure we can write
    there; returns the folder. Sets this process's umask to 0077 so that whatever is written
    later (by SQLite, by a worker) is private too."""
    folder = Path(path)
    if not folder.is_absolute():
        raise DataDirError(f"UNITGUARD_DATA_DIR must be an absolute path, not {path}")
    os.umask(PRIVATE_UMASK)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        raise DataDirError(
            f"cannot make the data folder {folder} ({exc.strerror or exc}): create it, owned "
            "by the user that runs unitguard, mode 0700"
        ) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise DataDirError(f"UNITGUARD_DATA_DIR {folder} is not a folder")
    if info.st_uid != os.geteuid():
        raise DataDirError(
            f"the data folder {folder} belongs to another user: chown it to the user that runs "
            "unitguard"
        )
    if info.st_mode & 0o077:
        raise DataDirError(
            f"the data folder {folder} is open to other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}): chmod 700 {folder}"
        )
    for entry in folder.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            entry.chmod(0o600)
    _check_writable(folder)
    database = folder / DATABASE_FILE
    if not database.exists():
        # SQLite gives its journal files the database file's mode: make it 0600 from the start.
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
    return folder


def _check_writable(folder: Path) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise DataDirError(
            f"cannot write in the data folder {folder} ({exc.strerror or exc})"
        ) from exc
