"""What ``serve`` checks before it starts (``refusal``), and what ``serve --check`` checks
against the EHRs (``check``): contract section 5, "Running it at a hospital".

``refusal`` is cheap and local (no network); ``check`` reads each EHR's SMART configuration and
CapabilityStatement, loads every key the configuration names, tries the data folder and reads
the database's schema revision, one line per check.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from plugin.errors import PluginError
from plugin.web.settings import Settings


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(settings: Settings, host: str, public_url_set: bool) -> str | None:
    """Why ``serve`` must not start with these settings on ``host``, in one line, or None."""
    if not settings.ehrs_file:
        return (
            "no EHR list: pass --ehrs FILE or set UNITGUARD_EHRS (a TOML file with one [[ehr]] "
            "table per EHR; smart_launch/ehrs.example.toml, docs/deploy.md)"
        )
    if not public_url_set and not is_loopback(host):
        return (
            f"UNITGUARD_PUBLIC_URL is not set: serving on {host} needs the https:// address "
            "users and EHRs reach the app at (e.g. https://unitguard.example.org)"
        )
    url = urlsplit(settings.public_url)
    if url.scheme != "https" and not is_loopback(url.hostname or ""):
        return (
            f"UNITGUARD_PUBLIC_URL must be an https:// address (EHRs send authorization codes "
            f"to it), not {settings.public_url}"
        )
    if not settings.data_dir and not settings.database_url:
        return (
            "UNITGUARD_DATA_DIR is not set: name the folder where unitguard keeps its database "
            "(e.g. /var/lib/unitguard), or set UNITGUARD_DATABASE_URL"
        )
    return None


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.text}"


def check(settings: Settings, host: str, public_url_set: bool) -> Iterator[Check]:
    """Every check, in order; a failed one does not stop the others."""
    problem = refusal(settings, host, public_url_set)
    yield Check(problem is None, problem or f"settings: public URL {settings.public_url}")
    yield from _storage(settings)
    yield from _keys(None, "UNITGUARD_PRIVATE_KEY", settings.private_key)
    if not settings.ehrs_file:
        return
    from smart_launch import load_registry
    from smart_launch.registry import RegistryError

    try:
        registry = load_registry(settings.ehrs_file)
    except RegistryError as exc:
        yield Check(False, str(exc))
        return
    yield Check(True, f"EHR list {settings.ehrs_file}: {len(registry.ehrs)} EHR(s)")
    from smart_launch import make_session

    session = make_session(retries=1, timeout=(5.0, 15.0))
    for ehr in registry.ehrs:
        yield _discovery(session, ehr)
        yield _capabilities(session, ehr)
        yield from _keys(ehr.name, "private_key", ehr.private_key)
        yield from _keys(ehr.name, "[ehr.quirks] backend_key", ehr.quirks.get("backend_key"))
        yield from _jwks(ehr.name, ehr.quirks.get("cds_jwks_file"))
        yield from _code_map(ehr.name, ehr.codes.get("map"))


def _storage(settings: Settings) -> Iterator[Check]:
    from plugin import schema
    from plugin.datadir import open_data_dir
    from plugin.db import make_engine

    if settings.data_dir:
        try:
            open_data_dir(settings.data_dir)
            yield Check(True, f"data folder {settings.data_dir}: private (0700) and writable")
        except PluginError as exc:
            yield Check(False, str(exc))
            return
    if not settings.data_dir and not settings.database_url:
        return
    try:
        engine = make_engine(settings.task_db)
        found = schema.state(engine)
    except Exception as exc:  # noqa: BLE001 - any driver error is a failed check, named
        yield Check(False, f"database: cannot be read ({type(exc).__name__}: {exc})")
        return
    where = schema.describe(engine)
    engine.dispose()
    if found.empty:
        yield Check(True, f"database {where}: new (serve makes it at schema {schema.head()})")
    elif found.current:
        yield Check(True, f"database {where}: schema {found.revision} (current)")
    else:
        yield Check(False, schema.problem(engine, found) or "database: unknown schema")


def _discovery(session, ehr) -> Check:
    from smart_launch import Discovery
    from smart_launch.errors import SmartLaunchError

    try:
        config = Discovery(session).get(ehr.issuer)
    except SmartLaunchError as exc:
        return Check(False, f"EHR {ehr.name!r}: {exc}")
    return Check(
        True,
        f"EHR {ehr.name!r}: SMART configuration read (authorize {config.authorization_endpoint}, "
        f"token {config.token_endpoint})",
    )


def _capabilities(session, ehr) -> Check:
    url = f"{ehr.issuer}/metadata"
    try:
        response = session.get(url, headers={"Accept": "application/fhir+json"})
        response.raise_for_status()
        body = response.json()
    except Exception as exc:  # noqa: BLE001 - requests' and JSON's errors alike: a failed check
        return Check(False, f"EHR {ehr.name!r}: cannot read {url} ({type(exc).__name__})")
    if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
        return Check(False, f"EHR {ehr.name!r}: {url} is not a CapabilityStatement")
    version = body.get("fhirVersion", "?")
    if not str(version).startswith("4.0"):
        return Check(False, f"EHR {ehr.name!r}: FHIR {version}, not R4 (4.0.x)")
    return Check(True, f"EHR {ehr.name!r}: CapabilityStatement read (FHIR {version})")


def _keys(name: str | None, what: str, path: str | None) -> Iterator[Check]:
    if not path:
        return
    from joserfc.jwk import RSAKey

    where = f"EHR {name!r}: {what}" if name else what
    try:
        RSAKey.import_key(Path(path).read_bytes())
    except OSError as exc:
        yield Check(False, f"{where} {path}: cannot be read ({exc.strerror or exc})")
        return
    except Exception:  # noqa: BLE001 - joserfc raises several kinds for a bad key
        yield Check(False, f"{where} {path}: not an RSA private key in PEM")
        return
    yield Check(True, f"{where} {path}: RSA key loaded")


def _jwks(name: str, path: str | None) -> Iterator[Check]:
    if not path:
        return
    try:
        keys = json.loads(Path(path).read_text()).get("keys")
    except (OSError, ValueError, AttributeError):
        yield Check(False, f"EHR {name!r}: cds_jwks_file {path} is not a readable JWKS")
        return
    if not keys:
        yield Check(False, f"EHR {name!r}: cds_jwks_file {path} holds no keys")
        return
    yield Check(True, f"EHR {name!r}: cds_jwks_file {path}: {len(keys)} key(s)")


def _code_map(name: str, path: str | None) -> Iterator[Check]:
    if not path:
        return
    from plugin.fhir.codemap import load_code_map

    try:
        codes = load_code_map(path)
    except PluginError as exc:
        yield Check(False, f"EHR {name!r}: {exc}")
        return
    yield Check(True, f"EHR {name!r}: code map {path}: {len(codes)} code(s)")
