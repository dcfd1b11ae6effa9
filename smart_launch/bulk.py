"""A FHIR Bulk Data client (Bulk Data Access IG v2): kick-off, status polling that honours
Retry-After, NDJSON downloads to a folder, and deletion of the export on the server.

Tokens come from a callable (SMART Backend Services in practice) and are refreshed once after a
401. Every URL the server hands back (status, files) must be on the FHIR server's origin: a
bearer token is never sent elsewhere. Messages name the step and the HTTP status, never a
query string or a patient.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urljoin

import orjson
import requests

from smart_launch.client import FHIR_JSON, outcome_text, why_no_answer
from smart_launch.errors import FhirError
from smart_launch.http import make_session, origin

log = logging.getLogger(__name__)
NDJSON = "application/fhir+ndjson"


class BulkExportFailed(FhirError):
    """The export could not be started, finished or downloaded; the message says which step."""


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    resources: dict[str, int] = field(default_factory=dict)  # type -> lines downloaded
    errors: list[str] = field(default_factory=list)  # the server's OperationOutcome files
    polls: int = 0
    transaction_time: str | None = None


class BulkExport:
    """One export from one FHIR server.

    ``sleep`` and ``clock`` are injectable so tests need not wait; ``max_wait`` bounds the whole
    polling phase (seconds), ``default_wait`` is used when the server sends no Retry-After.
    """

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str | None] | None = None,
        refresh: Callable[[], None] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_wait: float = 6 * 3600,
        default_wait: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.token, self.refresh = token, refresh
        self.session = session or make_session()
        self.sleep, self.clock = sleep, clock
        self.max_wait, self.default_wait = max_wait, default_wait

    # -- HTTP -------------------------------------------------------------------------------

    def _url(self, target: str, step: str) -> str:
        url = urljoin(self.base_url, target)
        if origin(url) != origin(self.base_url):
            raise BulkExportFailed(f"{step}: the server pointed outside its own origin; refused")
        return url

    def _request(
        self,
        method: str,
        url: str,
        step: str,
        stream: bool = False,
        authorised: bool = True,
        **headers: str,
    ) -> requests.Response:
        """One request with the bearer token (unless ``authorised`` is False), refreshed once
        after a 401."""
        for attempt in (1, 2):
            sent = dict(headers)
            token = self.token() if self.token and authorised else None
            if token:
                sent["Authorization"] = f"Bearer {token}"
            try:
                response = self.session.request(method, url, headers=sent, stream=stream)
            except requests.RequestException as exc:
                raise BulkExportFailed(f"{step}: no answer, {why_no_answer(exc)}") from exc
            if response.status_code == 401 and attempt == 1 and self.refresh and authorised:
                response.close()
                self.refresh()
                continue
            return response
        return response

    @staticmethod
    def _failure(step: str, response: requests.Response) -> BulkExportFailed:
        try:
            detail = outcome_text(response.json())
        except ValueError:
            detail = "no details"
        return BulkExportFailed(f"{step}: the server answered {response.status_code} ({detail})")

    # -- the three steps --------------------------------------------------------------------

    def kick_off(
        self,
        group: str | None = None,
        types: Sequence[str] = (),
        since: str | None = None,
    ) -> str:
        """Start the export (``Group/{id}/$export``, else the system-level ``$export``);
        returns the status URL."""
        path = f"Group/{group}/$export" if group else "$export"
        params = {"_outputFormat": NDJSON}
        if types:
            params["_type"] = ",".join(types)
        if since:
            params["_since"] = since
        url = self._url(f"{path}?{urlencode(params)}", "export kick-off")
        response = self._request(
            "GET", url, "export kick-off", Accept=FHIR_JSON, Prefer="respond-async"
        )
        if response.status_code != 202:
            raise self._failure("export kick-off", response)
        location = response.headers.get("Content-Location")
        if not location:
            raise BulkExportFailed("export kick-off: the server gave no Content-Location")
        return self._url(location, "export kick-off")

    def wait(self, status_url: str, progress: Callable[[str], None] | None = None) -> dict:
        """Poll until the manifest is ready, sleeping as Retry-After asks (bounded)."""
        deadline = self.clock() + self.max_wait
        polls = 0
        while True:
            response = self._request("GET", status_url, "export status", Accept="application/json")
            polls += 1
            if response.status_code == 200:
                try:
                    manifest = response.json()
                except ValueError as exc:
                    raise BulkExportFailed("export status: the manifest is not JSON") from exc
                if not isinstance(manifest, dict) or not isinstance(manifest.get("output"), list):
                    raise BulkExportFailed("export status: the manifest has no output list")
                manifest["_polls"] = polls
                return manifest
            if response.status_code not in (202, 429, 503):
                raise self._failure("export status", response)
            wait = _retry_after(response.headers.get("Retry-After"), self.default_wait)
            if progress and response.headers.get("X-Progress"):
                progress(response.headers["X-Progress"][:100])
            if self.clock() + wait > deadline:
                raise BulkExportFailed(
                    f"export status: not ready after {self.max_wait:.0f} s; the export is left "
                    "running on the server"
                )
            self.sleep(wait)

    def download(self, manifest: dict, folder: Path) -> ExportResult:
        """Write each output file to ``folder/{Type}.{n}.ndjson``; error files are read into
        ``errors``."""
        folder.mkdir(parents=True, exist_ok=True)
        result = ExportResult(transaction_time=manifest.get("transactionTime"))
        needs_token = manifest.get("requiresAccessToken", True)
        numbers: dict[str, int] = {}
        for n, item in enumerate(manifest["output"], start=1):
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise BulkExportFailed(f"export manifest: output {n} has no url")
            rtype = str(item.get("type") or "Unknown")
            if not rtype.isalnum():
                raise BulkExportFailed(f"export manifest: output {n} has a bad type")
            numbers[rtype] = numbers.get(rtype, 0) + 1
            path = folder / f"{rtype}.{numbers[rtype]:03d}.ndjson"
            result.resources[rtype] = result.resources.get(rtype, 0) + self._fetch_file(
                item["url"], path, needs_token, f"export file {n} ({rtype})"
            )
            result.files.append(path)
        for n, item in enumerate(manifest.get("error") or [], start=1):
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                path = folder / f"_errors.{n:03d}.json"
                self._fetch_file(item["url"], path, needs_token, f"export error file {n}")
                result.errors += _outcome_lines(path)
                path.unlink()
        return result

    def _fetch_file(self, target: str, path: Path, needs_token: bool, step: str) -> int:
        url = self._url(target, step)
        response = self._request(
            "GET", url, step, stream=True, authorised=needs_token, Accept=NDJSON
        )
        with response:
            if response.status_code != 200:
                raise self._failure(step, response)
            lines = 0
            partial = path.with_suffix(path.suffix + ".part")
            try:
                with partial.open("wb") as fh:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        fh.write(chunk)
                        lines += chunk.count(b"\n")
            except requests.RequestException as exc:
                partial.unlink(missing_ok=True)
                raise BulkExportFailed(
                    f"{step}: download broke off ({type(exc).__name__})"
                ) from exc
            partial.replace(path)
        return lines

    def delete(self, status_url: str) -> None:
        """Tell the server it may drop the files (best effort: a refusal is only logged)."""
        response = self._request("DELETE", status_url, "export delete")
        response.close()
        if response.status_code >= 400:
            log.info("export delete answered %s", response.status_code)

    def run(
        self,
        folder: Path,
        group: str | None = None,
        types: Sequence[str] = (),
        since: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> ExportResult:
        """Kick off, wait, download into ``folder``, then delete the export on the server."""
        status_url = self.kick_off(group, types, since)
        manifest = self.wait(status_url, progress)
        result = self.download(manifest, folder)
        result.polls = manifest.get("_polls", 0)
        self.delete(status_url)
        return result


def _retry_after(value: str | None, default: float) -> float:
    """Retry-After in seconds (an HTTP date falls back to the default), at most an hour."""
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        seconds = default
    return min(max(seconds, 0.0), 3600.0)


def _outcome_lines(path: Path) -> list[str]:
    texts = []
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    texts.append(outcome_text(orjson.loads(line)))
                except orjson.JSONDecodeError:
                    texts.append("an unreadable error line")
    return texts
