"""The allowlist of registered EHRs, read from a TOML file (contract.md section 5)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from smart_launch.errors import IssuerNotAllowed
from smart_launch.http import origin as origin_of

PROFILES = ("epic", "oracle", "full")


class RegistryError(ValueError):
    """The registry file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class RegisteredEhr:
    name: str
    issuer: str  # the FHIR base URL, matched exactly
    client_id: str
    scopes: tuple[str, ...]
    client_secret: str | None = None
    private_key: str | None = None  # PEM path for private_key_jwt
    profile: str | None = None  # epic | oracle | full; detected when absent
    scope_style: str = "v2"  # v1 for servers that want patient/X.read
    quirks: dict = field(default_factory=dict)
    codes: dict = field(default_factory=dict)  # [ehr.codes]: map = CSV of the EHR's own codes
    # Who may work the coder queue (contract section 5): fhirUser references, and the
    # PractitionerRole codes that make a user a coder.
    coders: tuple[str, ...] = ()
    coder_role_codes: tuple[str, ...] = ()
    # Hosts other than the issuer's that serve this EHR's note Binaries (contract section 2):
    # "host" or "host:port", lower case. The token is sent to these and to no other host.
    binary_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"RegisteredEhr(name={self.name!r}, issuer={self.issuer!r})"

    @property
    def origin(self) -> str:
        return origin_of(self.issuer)


@dataclass(frozen=True)
class Registry:
    ehrs: tuple[RegisteredEhr, ...]

    def find_by_issuer(self, issuer: str | None) -> RegisteredEhr:
        for ehr in self.ehrs:
            if issuer is not None and ehr.issuer == issuer:
                return ehr
        raise IssuerNotAllowed(
            "this EHR is not registered with unitguard; ask your "
            "administrator to add its FHIR base URL to the EHR list"
        )


def _binary_hosts(value: object, where: str) -> tuple[str, ...]:
    """``binary_hosts``: a list of host names (``host`` or ``host:port``), no scheme or path."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RegistryError(f"{where}: 'binary_hosts' must be a list of host names")
    hosts = []
    for host in value:
        host = host.strip().lower()
        if "/" in host or "@" in host or any(c.isspace() for c in host):
            raise RegistryError(
                f"{where}: 'binary_hosts' entry {host!r} is not a host name "
                "(write host or host:port, without https:// or a path)"
            )
        hosts.append(host)
    return tuple(hosts)


def load_registry(path: str | Path) -> Registry:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the EHR list ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: not valid TOML ({exc})") from exc
    tables = data.get("ehr")
    if not isinstance(tables, list) or not tables:
        raise RegistryError(f"{path}: no [[ehr]] table")
    ehrs = []
    for n, table in enumerate(tables, start=1):
        where = f"{path}: [[ehr]] number {n}"
        for key in ("name", "issuer", "client_id"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise RegistryError(f"{where}: '{key}' is required")
        if not table["issuer"].startswith(("https://", "http://")):
            raise RegistryError(f"{where}: 'issuer' must be the FHIR base URL")
        scopes = table.get("scopes", "launch openid fhirUser")
        if isinstance(scopes, str):
            scopes = scopes.split()
        profile = table.get("profile")
        if profile is not None and profile not in PROFILES:
            raise RegistryError(f"{where}: 'profile' must be one of {', '.join(PROFILES)}")
        lists = {}
        for name in ("coders", "coder_role_codes"):
            value = table.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise RegistryError(f"{where}: '{name}' must be a list of strings")
            lists[name] = tuple(value)
        lists["binary_hosts"] = _binary_hosts(table.get("binary_hosts", []), where)
        key = table.get("private_key")
        if key is not None and not Path(key).is_file():
            raise RegistryError(f"{where}: 'private_key' file {key} does not exist")
        ehrs.append(
            RegisteredEhr(
                name=table["name"],
                issuer=table["issuer"].rstrip("/"),
                client_id=table["client_id"],
                scopes=tuple(scopes),
                client_secret=table.get("client_secret"),
                private_key=key,
                profile=profile,
                scope_style=table.get("scope_style", "v2"),
                quirks=dict(table.get("quirks", {})),
                codes=dict(table.get("codes", {})),
                **lists,
            )
        )
    issuers = [e.issuer for e in ehrs]
    if len(issuers) != len(set(issuers)):
        raise RegistryError(f"{path}: an issuer is registered twice")
    return Registry(tuple(ehrs))
