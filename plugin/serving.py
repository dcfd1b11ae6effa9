"""Run a WSGI app on host:port for the ``serve``, ``sandbox`` and ``demo`` commands.

Refuses to start with one clear line when the port is taken, prints the URLs it serves, and
stops cleanly on SIGINT or SIGTERM.

``serve`` runs under gunicorn (``run_gunicorn``): a fixed number of worker processes, each
with a capped thread pool, a per-request timeout, graceful shutdown, and requests read whole by
the worker's poller before a thread takes them (``plugin.worker``: a client that stalls holds no
thread, and one whose head takes over ``head_timeout`` seconds is closed). ``sandbox`` and
``demo`` (synthetic data, loopback, one user) keep werkzeug's threaded server in this process
(``bind``).

Neither server logs a query string or a raw path: the access log names the route template
(``/review/<encounter_id>``), so no session id, code, state, token or patient reference can
reach it (``log_routes`` records the template on each request).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from plugin.errors import PluginError

ROUTE_KEY = "unitguard.route"
access_log = logging.getLogger("unitguard.access")

MAX_WORKERS = 32
MAX_THREADS = 32


def log_routes(app: Flask) -> None:
    """Record the matched route template in the WSGI environ, for the access log."""

    @app.before_request
    def remember_route() -> None:
        rule = request.url_rule
        request.environ[ROUTE_KEY] = rule.rule if rule is not None else "(no route)"


def logged_path(environ: dict) -> str:
    """What the access log may show of a request's target: its route template, never the
    path or query the client sent (paths carry encounter and Task ids, queries sids/codes)."""
    return environ.get(ROUTE_KEY) or "(no route)"


class QuietPathHandler(WSGIRequestHandler):
    """werkzeug's request handler, logging the route template instead of the request line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        environ = getattr(self, "environ", None) or {}
        access_log.info(
            '%s "%s %s" %s %s',
            self.address_string(),
            self.command,
            logged_path(environ),
            getattr(code, "value", code),
            size,
        )


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


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only: ``localhost`` or a loopback address (127.0.0.0/8,
    ::1). Any other name or address may be reachable from elsewhere (``0.0.0.0`` from anywhere)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int, app: Callable) -> BaseWSGIServer:
    if port:
        _probe(host, port)
    try:
        return make_server(host, port, app, threaded=True, request_handler=QuietPathHandler)
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


@dataclass(frozen=True)
class GunicornLimits:
    """How much one ``serve`` may take on: processes, threads, time per request."""

    workers: int = 2
    threads: int = 4
    timeout: int = 30  # seconds a request may run before its worker is replaced
    graceful_timeout: int = 20  # seconds in-flight requests get on SIGTERM/SIGINT
    keepalive: int = 5  # seconds an idle kept-alive connection is kept
    head_timeout: int = 10  # seconds a client has to send its request head (plugin.worker)
    max_connections: int = 1000  # open connections per worker, idle ones included

    def validated(self) -> GunicornLimits:
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ServeError(f"--workers must be between 1 and {MAX_WORKERS}, not {self.workers}")
        if not 1 <= self.threads <= MAX_THREADS:
            raise ServeError(f"--threads must be between 1 and {MAX_THREADS}, not {self.threads}")
        if self.timeout < 1:
            raise ServeError("--timeout must be at least 1 second")
        if not 1 <= self.head_timeout <= 300:
            raise ServeError("--header-timeout must be between 1 and 300 seconds")
        return self


class _AccessLog:
    """gunicorn's logger with the request target replaced by the route template."""

    @staticmethod
    def make():
        from gunicorn.glogging import Logger

        class RouteOnlyLogger(Logger):
            def atoms(self, resp, req, environ, request_time):
                atoms = super().atoms(resp, req, environ, request_time)
                path = logged_path(environ)
                atoms.update({"U": path, "q": "", "r": f"{environ.get('REQUEST_METHOD')} {path}"})
                atoms.update({"f": "-", "a": "-"})  # the referrer carries queries too
                return atoms

        return RouteOnlyLogger


ACCESS_FORMAT = '%(h)s worker=%(p)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def run_gunicorn(
    app: Callable,
    host: str,
    port: int,
    limits: GunicornLimits,
    announce: Callable[[], None],
    access_log_file: str = "-",
) -> None:
    """Serve ``app`` (built once here, then shared by the forked workers) until SIGTERM or
    SIGINT, both graceful: in-flight requests get ``graceful_timeout`` seconds to finish."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter

    from plugin.worker import RequestBufferingWorker

    limits = limits.validated()
    _probe(host, port)
    # Read by the workers forked from this process.
    RequestBufferingWorker.head_timeout = float(limits.head_timeout)
    RequestBufferingWorker.body_timeout = float(limits.timeout)
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": limits.workers,
        "threads": limits.threads,
        "worker_class": "plugin.worker.RequestBufferingWorker",
        "timeout": limits.timeout,
        "graceful_timeout": limits.graceful_timeout,
        "keepalive": limits.keepalive,
        "worker_connections": limits.max_connections,
        "limit_request_line": 4094,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        "preload_app": True,
        "accesslog": access_log_file,
        "access_log_format": ACCESS_FORMAT,
        "logger_class": f"{__name__}.RouteOnlyLogger",
        "loglevel": "warning",
        "proc_name": "unitguard",
        # Nothing written to HOME or the working directory: no control socket (gunicorn would
        # make ~/.gunicorn/gunicorn.ctl; signals do all we need), files private to the owner.
        "control_socket_disable": True,
        "umask": 0o077,
        # Forwarding headers are the app's to judge (plugin.web.proxy, UNITGUARD_PROXY_*), so
        # gunicorn believes none, not even loopback's X-Forwarded-Proto.
        "forwarded_allow_ips": "",
        "when_ready": lambda _server: announce(),
    }

    class Application(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    class GracefulArbiter(Arbiter):
        # gunicorn's SIGINT is a quick shutdown that drops in-flight requests; here SIGINT
        # (Ctrl-C) is as graceful as SIGTERM.
        def handle_int(self) -> None:
            self.handle_term()

    GracefulArbiter(Application()).run()


def __getattr__(name: str):
    # gunicorn loads its logger class by dotted name; build it on first use so importing this
    # module does not import gunicorn.
    if name == "RouteOnlyLogger":
        return _AccessLog.make()
    raise AttributeError(name)
