"""gunicorn's threaded worker, made to hold no thread for a slow or stalled client.

gunicorn's gthread worker hands a connection to a pool thread as soon as it is readable, and the
thread then blocks until the whole request head has arrived: 16 clients trickling their headers
took every thread of a ``serve``. Here the worker's own poller (one thread, no blocking) reads the
request head, and a small body after it, into memory; only a complete request goes to a thread.
A connection whose head is not complete ``head_timeout`` seconds after it opened (or after its
previous response, on a kept-alive connection) is closed, and so is one whose small body has not
arrived ``body_timeout`` seconds after its head. A larger body (over ``BUFFERED_BODY``) is read by
the thread, each read waiting at most ``body_timeout`` seconds. Behind nginx (deploy/nginx), which
buffers whole requests, the app sees only complete ones anyway.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from functools import partial

from gunicorn.workers.gthread import _DEFER, TConn, ThreadWorker

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 64 * 1024  # more than gunicorn's own limits allow: its parser then answers 4xx
BUFFERED_BODY = 64 * 1024  # bodies up to this size are read by the poller, not a thread
_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)


def body_length(head: bytes) -> int | None:
    """The body's length announced in ``head``, 0 without one, None when it cannot be known
    here (chunked, or a length too large to buffer): the thread then reads it."""
    if _CHUNKED.search(head):
        return None
    found = _LENGTH.search(head)
    length = int(found.group(1)) if found else 0
    return length if length <= BUFFERED_BODY else None


class RequestBufferingWorker(ThreadWorker):
    head_timeout = 10.0  # set by plugin.serving before the workers are forked
    body_timeout = 30.0

    def _wait_for_request(self, conn: TConn) -> None:
        conn.received = bytearray()
        conn.needed = None  # bytes of the whole request, once its head is in
        conn.timeout = time.monotonic() + self.head_timeout
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_bytes, conn))

    def accept(self, listener) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._wait_for_request(conn)

    def on_client_socket_readable(self, conn: TConn, client) -> None:
        """A kept-alive connection's next request: read its head in the poller too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._wait_for_request(conn)

    def _drop(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        self.pending_conns.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def on_bytes(self, conn: TConn, client) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        conn.received += data
        self._examine(conn)

    def _examine(self, conn: TConn) -> None:
        """Dispatch the request once its head, and a small body, are all in."""
        if conn.needed is None:
            end = conn.received.find(HEAD_END)
            if end < 0:
                if len(conn.received) > MAX_HEAD:
                    self._dispatch(conn)  # gunicorn's parser refuses it with a 4xx
                return
            length = body_length(bytes(conn.received[: end + len(HEAD_END)]))
            if length is None:
                self._dispatch(conn)
                return
            conn.needed = end + len(HEAD_END) + length
            conn.timeout = time.monotonic() + self.body_timeout  # the body's own time
        if len(conn.received) >= conn.needed:
            self._dispatch(conn)

    def finish_request(self, conn: TConn, fs) -> None:
        """gthread hands a kept-alive connection whose next request already started arriving
        straight back to a thread, which would block on the rest: read it in the poller too."""
        try:
            keep = False if fs.cancelled() else fs.result()
        except Exception:  # noqa: BLE001 - gthread's own finish_request handles the failure
            keep = False
        if keep and keep is not _DEFER and self.alive and conn.parser is not None:
            ahead = conn.parser.unreader.take_buffered()
            if ahead:
                conn.sock.setblocking(False)
                self._wait_for_request(conn)
                conn.received += ahead
                self._examine(conn)
                return
        super().finish_request(conn, fs)

    def _dispatch(self, conn: TConn) -> None:
        """Hand the connection, with what was read, to a pool thread."""
        self.poller.unregister(conn.sock)
        self.pending_conns.remove(conn)
        received, conn.received = bytes(conn.received), None
        conn.init()  # the HTTP/1 parser (serve speaks plain HTTP/1 behind the proxy)
        conn.parser.unreader.unread(received)
        conn.data_ready = True
        conn.sock.settimeout(self.body_timeout)
        self.enqueue_req(conn)

    def handle_request(self, req, conn):
        # gthread makes the socket blocking (no timeout) before parsing: a large body's reads
        # wait at most body_timeout each.
        conn.sock.settimeout(self.body_timeout)
        return super().handle_request(req, conn)

    def murder_pending(self) -> None:
        """Close every connection whose request did not arrive in time (a head's and a body's
        deadlines differ, so the whole list is looked at: at most worker_connections)."""
        now = time.monotonic()
        late = [conn for conn in self.pending_conns if conn.timeout <= now]
        for conn in late:
            self.pending_conns.remove(conn)
            try:
                self.poller.unregister(conn.sock)
            except (OSError, KeyError, ValueError):
                pass
            self.nr_conns -= 1
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
