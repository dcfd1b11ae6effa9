"""Believe a reverse proxy's X-Forwarded-For and X-Forwarded-Proto, and nobody else's.

Behind nginx every request arrives from the proxy's address, so without this all users would
share one rate-limit allowance and one client fingerprint. With ``UNITGUARD_PROXY_HOPS`` set to
the number of proxies in front of the app, werkzeug's ``ProxyFix`` takes the client's address
from the right end of X-Forwarded-For (the entries the proxies appended, not the ones a client
wrote itself). It does so only for a request whose peer is one of ``UNITGUARD_PROXY_FROM`` (the
proxy's addresses, loopback by default): a client that reaches the app directly and sends its own
X-Forwarded-For is counted by its real address, and its forwarding headers are removed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from werkzeug.middleware.proxy_fix import ProxyFix

FORWARDING = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")
FORWARDING += ("HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


class TrustedProxy:
    def __init__(self, app: Callable, hops: int, proxies: Iterable[str]) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(p, strict=False) for p in proxies)
        # Only the client's address and scheme: links and redirects come from
        # UNITGUARD_PUBLIC_URL, never from a forwarded Host.
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)

    def from_proxy(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address((peer or "").split("%")[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ: dict, start_response: Callable):
        if self.from_proxy(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for name in FORWARDING:
            environ.pop(name, None)
        return self.app(environ, start_response)


def trust_proxy(app: Callable, hops: int, proxies: Iterable[str]) -> Callable:
    """``app`` wrapped to believe ``hops`` proxies at ``proxies``; unchanged when hops is 0
    (then forwarding headers mean nothing to the app, whoever sends them)."""
    return TrustedProxy(app, hops, proxies) if hops > 0 else app
