"""`serve` on its own against slow clients: a request head or a small body arrives whole in the
worker's poller before any thread takes it, so clients trickling or stalling hold no thread, and
a head still incomplete after --header-timeout seconds gets the connection closed."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from tests.test_serve import free_port, wait_healthy
from tests.test_serve_gunicorn import serve, stop

HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n"


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory):
    """serve with one worker of one thread: any client holding a thread would stop it."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("slow")
    proc = serve(port, "--workers", "1", "--threads", "1", "--header-timeout", "2", tmp_path=tmp)
    wait_healthy(port, proc)
    yield port
    stop(proc)


def healthz(port: int) -> int:
    return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code


def test_clients_trickling_their_headers_hold_no_thread(one_thread):
    port = one_thread
    stop_trickling = threading.Event()
    slow = [socket.create_connection(("127.0.0.1", one_thread)) for _ in range(32)]

    def trickle() -> None:
        for n in range(len(HEAD)):
            if stop_trickling.wait(0.2):
                return
            for sock in slow:
                try:
                    sock.sendall(HEAD[n : n + 1])
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        answers = [healthz(port) for _ in range(10)]
    finally:
        stop_trickling.set()
        trickler.join()
        for sock in slow:
            sock.close()
    assert answers == [200] * 10


def test_a_stalled_body_holds_no_thread(one_thread):
    port = one_thread
    stalled = []
    try:
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(
                b"POST /fhir/Task HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2000\r\n\r\n" + b"{" * 100
            )  # and 1,900 bytes that never come
            stalled.append(sock)
        assert [healthz(port) for _ in range(5)] == [200] * 5
    finally:
        for sock in stalled:
            sock.close()


def test_a_head_that_never_completes_is_closed_after_the_header_timeout(one_thread):
    with socket.create_connection(("127.0.0.1", one_thread)) as sock:
        sock.sendall(HEAD)  # no blank line: the head never ends
        sock.settimeout(30)  # far beyond the 2 s header timeout; a close comes first
        assert sock.recv(1024) == b""  # closed by the server, no answer


def test_a_complete_request_sent_in_pieces_is_answered(one_thread):
    with socket.create_connection(("127.0.0.1", one_thread)) as sock:
        for piece in (HEAD[:10], HEAD[10:], b"Connection: close\r\n", b"\r\n"):
            sock.sendall(piece)
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}\n')


def test_a_body_sent_in_pieces_reaches_the_app_whole(one_thread):
    body = b'{"resourceType": "Task"}'
    with socket.create_connection(("127.0.0.1", one_thread)) as sock:
        sock.sendall(
            b"POST /fhir/Task HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        sock.sendall(body[:5])
        sock.sendall(body[5:])
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    # The Task API answers (it needs a token): the request arrived whole and was handled.
    assert answer.split(b" ", 2)[1] in (b"401", b"403", b"405")


def test_a_request_pipelined_behind_another_and_left_unfinished_holds_no_thread(one_thread):
    """The first request is answered; the second, started in the same packet and never
    finished, waits in the poller (gthread would hand it straight back to the thread)."""
    port = one_thread
    held = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(HEAD + b"\r\n" + HEAD)  # a whole request, then half of the next
            sock.settimeout(10)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(sock)
        assert [healthz(port) for _ in range(5)] == [200] * 5
    finally:
        for sock in held:
            sock.close()
