"""The audit on a Dask cluster (``--scheduler ADDRESS``): connect once, and first make sure every
worker sees the input and the scratch folder at the paths the client gives them.

Paths are made absolute on the client before they leave it (a worker's working directory is
not the client's), and a small check task runs on every worker: it lists the input folder and
writes and removes a file in the scratch folder. A worker that cannot is named in one line,
instead of a FileNotFoundError traceback from deep inside the first pass.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

from plugin.errors import InputError, PluginError


class ClusterUnreachable(PluginError):
    """The scheduler cannot be reached; the message names it."""


@contextmanager
def connected(address: str):
    """A distributed Client of the scheduler at ``address``, closed when the block ends; it
    waits for the scheduler as long as Dask's distributed.comm.timeouts.connect says (30 s;
    DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT)."""
    import dask
    from distributed import Client

    try:
        client = Client(address, timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError) as exc:
        raise ClusterUnreachable(
            f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}); is "
            "`dask scheduler` running there?"
        ) from None
    try:
        yield client
    finally:
        client.close()


def what_a_worker_sees(source: str, names: list[str], scratch: str) -> str | None:
    """Run on a worker: None when it can read every input file and write in the scratch
    folder, else what it cannot (paths, never file contents)."""
    folder = Path(source)
    if not folder.is_dir():
        return f"no folder {source}"
    missing = [name for name in names if not os.access(folder / name, os.R_OK)]
    if missing:
        return f"cannot read {folder / missing[0]}" + (
            f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        )
    probe = Path(scratch) / f".worker-check-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"cannot write in the scratch folder {scratch} ({exc.strerror or exc})"
    return None


def check_workers(client, source: Path, files: list[Path], scratch: Path) -> int:
    """Every worker must see ``source``'s files and write in ``scratch``; returns how many
    workers were checked. Raises ``InputError`` naming the first worker that cannot."""
    names = [path.name for path in files]
    seen = client.run(what_a_worker_sees, str(source), names, str(scratch))
    if not seen:
        raise InputError(f"the Dask scheduler at {client.scheduler.address} has no workers")
    for worker, problem in sorted(seen.items()):
        if problem:
            raise InputError(
                f"Dask worker {worker} cannot see the audit's files: {problem}. Give SOURCE and "
                "UNITGUARD_SCRATCH on storage every worker mounts at the same path"
            )
    return len(seen)
