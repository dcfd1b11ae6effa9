"""The web app's settings: one frozen dataclass built from UNITGUARD_* variables, validated."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace

import sqlalchemy as sa

from plugin.datadir import sqlite_url
from plugin.errors import PluginError
from plugin.web.api_tokens import FORMAT, ApiToken, TokenFormatError, parse_tokens

# The three variables that once named a database per store: retired, one database holds them all.
RETIRED = ("UNITGUARD_TASK_DB", "UNITGUARD_OUTBOX_DB", "UNITGUARD_SESSION_DB")


class SettingsError(PluginError):
    """A setting is missing or wrong; the message names the variable and what to set."""


@dataclass(frozen=True)
class Settings:
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8080"
    ehrs_file: str | None = None
    data_dir: str | None = None  # UNITGUARD_DATA_DIR: the SQLite database and any other file
    database_url: str | None = None  # UNITGUARD_DATABASE_URL: one database for every store
    # Each store's database; from the environment all three are the one database above (in
    # memory, a private temporary file, when neither is set: tests and demos only).
    task_db: str = "sqlite://"
    outbox_db: str = "sqlite://"
    session_db: str = "sqlite://"
    # X-Forwarded-For/-Proto are believed only from these addresses, through this many proxies.
    proxy_hops: int = 0
    proxy_from: tuple[str, ...] = ("127.0.0.1", "::1")
    coding_owner: str = "Organization/coding-team"
    coding_owner_display: str = "Coding team"
    write_clean_tasks: bool = False
    task_api_tokens: tuple[ApiToken, ...] = ()  # each bound to an EHR and fields (api_tokens)
    session_minutes: int = 60  # a session's whole lifetime
    idle_minutes: int = 15  # a session ends after this long without a request
    testing: bool = False
    private_key: str | None = None  # PEM path of the app's key for private_key_jwt
    frame_ancestors: tuple[str, ...] = field(default=())
    visit_cache_seconds: int = 60  # how long a review page reuses the fetched visit; 0 = off
    visit_cache_size: int = 256  # visits kept at most (least recently used go first)
    # requests per minute per client (session, else address); 0 = no limit on that surface
    rate_limits: bool = True
    rate_launch: int = 60  # each of /launch, /login and /callback
    rate_actions: int = 60  # sign-off and queue action POSTs
    rate_cds: int = 600  # CDS Hooks calls (the EHR calls from few addresses)
    rate_task_api: int = 300  # /fhir/Task
    rate_queue: int = 60  # the coder queue and its Task pages
    rate_refresh: int = 10  # "Re-read from the chart" (each one reads the whole visit again)
    rate_export: int = 10  # the queue's CSV export (each one reads every matching Task)
    max_body: int = 1024 * 1024  # bytes; a larger request body gets 413 before it is read

    def rate_per_minute(self) -> dict[str, int]:
        """Requests per minute per client for each limited surface; empty when limits are off."""
        if not self.rate_limits:
            return {}
        return {
            "launch": self.rate_launch,
            "actions": self.rate_actions,
            "cds": self.rate_cds,
            "task_api": self.rate_task_api,
            "queue": self.rate_queue,
            "refresh": self.rate_refresh,
            "export": self.rate_export,
        }

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        for name in RETIRED:
            if env.get(name):
                raise SettingsError(
                    f"{name} is no longer read: every store now lives in one database, "
                    "UNITGUARD_DATABASE_URL, or a SQLite file in UNITGUARD_DATA_DIR "
                    "(docs/deploy.md, 'Moving from separate databases')"
                )
        data_dir = env.get("UNITGUARD_DATA_DIR") or None
        database_url = env.get("UNITGUARD_DATABASE_URL") or None
        url = database_url or (sqlite_url(data_dir) if data_dir else cls.task_db)
        base = cls(
            secret_key=env.get("UNITGUARD_SECRET_KEY", ""),
            public_url=env.get("UNITGUARD_PUBLIC_URL", cls.public_url),
            ehrs_file=env.get("UNITGUARD_EHRS"),
            private_key=env.get("UNITGUARD_PRIVATE_KEY"),
            data_dir=data_dir,
            database_url=database_url,
            task_db=url,
            outbox_db=url,
            session_db=url,
            proxy_hops=_int_env("UNITGUARD_PROXY_HOPS", cls.proxy_hops),
            proxy_from=tuple(
                a.strip()
                for a in env.get("UNITGUARD_PROXY_FROM", ",".join(cls.proxy_from)).split(",")
                if a.strip()
            ),
            coding_owner=env.get("UNITGUARD_CODING_OWNER", cls.coding_owner),
            write_clean_tasks=env.get("UNITGUARD_WRITE_CLEAN_TASKS", "") in ("1", "true", "yes"),
            task_api_tokens=_task_api_tokens(env.get("UNITGUARD_TASK_API_TOKENS", "")),
            visit_cache_seconds=_int_env("UNITGUARD_VISIT_CACHE_SECONDS", cls.visit_cache_seconds),
            visit_cache_size=_int_env("UNITGUARD_VISIT_CACHE_SIZE", cls.visit_cache_size),
            rate_limits=env.get("UNITGUARD_RATE_LIMITS", "on") not in ("0", "off", "false", "no"),
            rate_launch=_int_env("UNITGUARD_RATE_LAUNCH", cls.rate_launch),
            rate_actions=_int_env("UNITGUARD_RATE_ACTIONS", cls.rate_actions),
            rate_cds=_int_env("UNITGUARD_RATE_CDS", cls.rate_cds),
            rate_task_api=_int_env("UNITGUARD_RATE_TASK_API", cls.rate_task_api),
            rate_queue=_int_env("UNITGUARD_RATE_QUEUE", cls.rate_queue),
            rate_refresh=_int_env("UNITGUARD_RATE_REFRESH", cls.rate_refresh),
            rate_export=_int_env("UNITGUARD_RATE_EXPORT", cls.rate_export),
            idle_minutes=_int_env("UNITGUARD_IDLE_MINUTES", cls.idle_minutes),
            max_body=_int_env("UNITGUARD_MAX_BODY", cls.max_body),
        )
        return replace(base, **overrides).validated()

    def validated(self) -> Settings:
        if not all(isinstance(t, ApiToken) for t in self.task_api_tokens):
            raise SettingsError(FORMAT)
        if self.idle_minutes < 1:
            raise SettingsError("UNITGUARD_IDLE_MINUTES must be at least 1 minute")
        if not self.public_url.startswith(("https://", "http://")):
            raise SettingsError(
                "UNITGUARD_PUBLIC_URL must be the app's own base URL, e.g. https://unitguard.example"
            )
        if self.data_dir is not None and not os.path.isabs(self.data_dir):
            raise SettingsError(f"UNITGUARD_DATA_DIR must be an absolute path, not {self.data_dir}")
        if self.database_url is not None:
            _check_database_url(self.database_url)
        if not 0 <= self.proxy_hops <= 5:
            raise SettingsError("UNITGUARD_PROXY_HOPS must be 0 (no proxy) to 5")
        for address in self.proxy_from:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise SettingsError(
                    f"UNITGUARD_PROXY_FROM: {address!r} is not an IP address or network"
                ) from None
        if self.max_body < 1024:
            raise SettingsError("UNITGUARD_MAX_BODY must be at least 1024 bytes")
        if self.visit_cache_seconds < 0:
            raise SettingsError("UNITGUARD_VISIT_CACHE_SECONDS must be 0 (off) or more seconds")
        if self.visit_cache_size < 1:
            raise SettingsError("UNITGUARD_VISIT_CACHE_SIZE must be at least 1")
        for surface, rate in self.rate_per_minute().items():
            if rate < 0:
                raise SettingsError(
                    f"UNITGUARD_RATE_{surface.upper()} must be 0 (no limit) or more per minute"
                )
        if not self.secret_key:
            if not self.testing:
                raise SettingsError(
                    "UNITGUARD_SECRET_KEY is not set: set it to a long random value "
                    "(python -c 'import secrets; print(secrets.token_hex(32))')"
                )
            return replace(self, secret_key=secrets.token_hex(32))
        if len(self.secret_key) < 16:
            raise SettingsError("UNITGUARD_SECRET_KEY is too short: use at least 16 characters")
        return self


def _check_database_url(url: str) -> None:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise SettingsError(
            "UNITGUARD_DATABASE_URL is not a database URL (e.g. "
            "postgresql+psycopg://unitguard@db.example/unitguard)"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        return
    if not parsed.database or parsed.database == ":memory:":
        raise SettingsError(
            "UNITGUARD_DATABASE_URL is an in-memory SQLite database, which keeps nothing: set "
            "UNITGUARD_DATA_DIR instead"
        )
    if not os.path.isabs(parsed.database):
        raise SettingsError(
            "UNITGUARD_DATABASE_URL names a SQLite file by a relative path: give an absolute "
            "one, or set UNITGUARD_DATA_DIR"
        )


def _task_api_tokens(value: str) -> tuple[ApiToken, ...]:
    if value.strip() and "|" not in value:  # the first format: bare tokens, bound to nothing
        raise SettingsError(
            "UNITGUARD_TASK_API_TOKENS is in the old format (bare tokens, bound to no EHR), "
            f"which is refused: {FORMAT}"
        )
    try:
        return parse_tokens(value)
    except TokenFormatError as exc:
        raise SettingsError(f"UNITGUARD_TASK_API_TOKENS: {exc}") from None


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {value!r}") from None
