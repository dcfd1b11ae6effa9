"""``unitguard sandbox`` listens only on loopback unless told otherwise (second security review,
LOW: ``--host 0.0.0.0`` started silently while the sandbox hands out tokens for any patient)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from plugin import serving
from plugin.cli import main
from plugin.errors import PluginError
from plugin.serving import is_loopback


class Bound(PluginError):
    """Raised where the command would start listening: the tests never open a socket."""


@pytest.fixture
def binds(monkeypatch):
    hosts: list[str] = []

    def bind(host, port, app):
        hosts.append(host)
        raise Bound(f"would listen on {host}")

    monkeypatch.setattr(serving, "bind", bind)
    return hosts


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "sandbox.example.org"])
def test_a_host_others_can_reach_is_refused_without_allow_remote(binds, host):
    result = CliRunner().invoke(main, ["sandbox", "--host", host, "--port", "0"])
    assert result.exit_code == 2 and binds == []  # it bound and served before
    (line,) = result.stderr.strip().splitlines()
    assert "not a loopback address" in line and "--allow-remote" in line


def test_allow_remote_lets_it_listen_there(binds):
    result = CliRunner().invoke(
        main, ["sandbox", "--host", "0.0.0.0", "--port", "0", "--allow-remote"]
    )
    assert binds == ["0.0.0.0"] and "would listen on 0.0.0.0" in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_flag(binds, host):
    CliRunner().invoke(main, ["sandbox", "--host", host, "--port", "0"])
    assert binds == [host]


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("[::1]") and is_loopback("LOCALHOST")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("")
