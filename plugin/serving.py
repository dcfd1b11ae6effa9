"""Run a WSGI app on host:port for the ``serve``, ``sandbox`` and ``demo`` commands.

Refuses to start with one clear line when the port is taken, prints the URLs it serves, and
stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from werkzeug.serving import BaseWSGIServer, make_server

from plugin.errors import PluginError


class ServeError(PluginError):
    """The server cannot start (port taken, bad address)."""


def bind(host: str, port: int, app: Callable) -> BaseWSGIServer:
    try:
        return make_server(host, port, app, threaded=True)
    except OSError as exc:
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise ServeError(
                f"port {port} on {host} is already in use; choose another with --port"
            ) from exc
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@contextmanager
def running(servers: Iterable[BaseWSGIServer]):
    """Serve in background threads; shut every server down when the block ends."""
    servers = list(servers)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def serve_until_stopped(servers: Iterable[BaseWSGIServer], announce: Callable[[], None]) -> None:
    """Block until SIGINT/SIGTERM, then stop every server cleanly."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with running(servers):
            announce()
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
