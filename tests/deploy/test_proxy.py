"""Behind a reverse proxy the app counts real clients: X-Forwarded-For is believed only from the
configured proxy, and only its right-most entries (the ones the proxies appended)."""

from __future__ import annotations

from plugin.web import create_app
from plugin.web.settings import Settings
from smart_launch import Registry
from smart_launch.registry import RegisteredEhr

PROXY = "127.0.0.1"


def app(hops: int):
    registry = Registry(
        (RegisteredEhr("x", "https://ehr.example/fhir", "unitguard", ("launch", "openid")),)
    )
    settings = Settings(testing=True, rate_launch=2, proxy_hops=hops, proxy_from=(PROXY,))
    return create_app(settings.validated(), registry=registry)


def launches(client, peer: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.get("/launch", headers=headers, environ_base={"REMOTE_ADDR": peer}).status_code


def test_two_clients_behind_the_proxy_have_separate_allowances():
    client = app(hops=1).test_client()
    first = [launches(client, PROXY, "198.51.100.1") for _ in range(3)]
    assert first[:2] != [429, 429] and first[2] == 429
    assert launches(client, PROXY, "198.51.100.2") != 429  # another user, its own allowance


def test_without_the_setting_everyone_behind_the_proxy_shares_one_allowance():
    client = app(hops=0).test_client()
    assert [launches(client, PROXY, f"198.51.100.{n}") for n in (1, 2, 3)][2] == 429


def test_a_forged_x_forwarded_for_from_a_direct_client_is_ignored():
    client = app(hops=1).test_client()
    answers = [launches(client, "203.0.113.9", f"198.51.100.{n}") for n in range(5)]
    assert answers.count(429) == 3  # counted by its own address, whatever it claims


def test_a_client_cannot_prepend_its_own_entries_through_the_proxy():
    """nginx appends the address it saw ($proxy_add_x_forwarded_for); only that one counts."""
    client = app(hops=1).test_client()
    answers = [
        launches(client, PROXY, f"192.0.2.{n}, 198.51.100.7") for n in range(5)
    ]  # a different forged first entry each time, the same real client
    assert answers.count(429) == 3


def test_the_app_sees_the_scheme_the_proxy_was_reached_by():
    flask_app = app(hops=1)

    @flask_app.get("/scheme-probe")
    def probe():
        from flask import request

        return f"{request.scheme} {request.remote_addr}"

    client = flask_app.test_client()
    headers = {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}
    through = client.get("/scheme-probe", headers=headers, environ_base={"REMOTE_ADDR": PROXY})
    assert through.text == "https 198.51.100.1"
    direct = client.get(
        "/scheme-probe", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"}
    )
    assert direct.text == "http 203.0.113.9"
