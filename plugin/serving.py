"""Run a WSGI app on host:port for the ``serve``, ``sandbox`` and ``demo`` commands.

Refuses to start with one clear line when the port is taken, prints the URLs it serves, and
stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from werkzeug.serving import BaseWSGIServer, make_server

from plugin.errors import PluginError


class ServeError(PluginError):
    """The server cannot start (port taken, bad address)."""


def _probe(host: str, port: int) -> None:
    """Fail with one clear line if the address cannot be bound (werkzeug would print its own
    text and exit 1)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug's server does
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise ServeError(
                    f"port {port} on {host} is already in use; choose another with --port"
                ) from exc
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def bind(host: str, port: int, app: Callable) -> BaseWSGIServer:
    if port:
        _probe(host, port)
    try:
        return make_server(host, port, app, threaded=True)
    except (OSError, SystemExit) as exc:  # werkzeug exits if the port was taken in between
        raise ServeError(f"cannot listen on {host}:{port}") from exc


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
