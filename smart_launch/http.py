"""A requests Session with timeouts everywhere and retries for GET only (never the token POST)."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: where a bearer token may be sent, and nothing else."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class TimeoutSession(requests.Session):
    """requests has no session-wide timeout; this one applies a default to every call."""

    def __init__(self, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, **kwargs)


def make_session(
    retries: int = 4, backoff: float = 0.5, timeout: tuple[float, float] = DEFAULT_TIMEOUT
) -> requests.Session:
    """GET retried on 429/5xx and dropped connections, honouring Retry-After, with backoff."""
    session = TimeoutSession(timeout)
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
