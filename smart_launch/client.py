"""A FHIR R4 client on requests: bearer auth with one refresh on 401, paging, OperationOutcome
errors, ETag/If-Match, conditional create and batch Bundles."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests

from smart_launch.errors import FhirConflict, FhirRequestError
from smart_launch.http import make_session, origin

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"
MAX_PAGES = 1000


@dataclass
class SearchResult:
    resources: list[dict] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)  # OperationOutcome entries, mode outcome
    pages: int = 0


def outcome_text(body: object) -> str:
    """The diagnostics of an OperationOutcome, else a short generic text."""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in body.get("issue") or []:
            if isinstance(issue, dict):
                parts.append(
                    issue.get("diagnostics")
                    or (issue.get("details") or {}).get("text")
                    or issue.get("code")
                    or ""
                )
        text = "; ".join(p for p in parts if p)
        if text:
            return text[:300]
    return "no details"


def why_no_answer(exc: requests.RequestException) -> str:
    """A short reason for a request that got no HTTP answer (timeouts named as such, also when
    urllib3 gave up after retrying them)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.Timeout) or "Timeout" in type(reason).__name__:
        return "timed out (after retries)"
    return f"connection failed ({type(exc).__name__})"


class FhirClient:
    """One FHIR server, one token source. ``token`` returns the current access token;
    ``refresh`` (optional) gets a new one after a 401, once per request."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str | None] | None = None,
        refresh: Callable[[], None] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.token, self.refresh = token, refresh
        self.session = session or make_session()
        self.requests = 0

    def at(self, base_url: str) -> FhirClient:
        """A client for another base URL with this one's token, refresh and session: for a host
        the EHR list names (``binary_hosts``), never for one a server's answer names."""
        return FhirClient(base_url, self.token, self.refresh, self.session)

    def _url(self, path: str) -> str:
        url = urljoin(self.base_url, path)
        if origin(url) != origin(self.base_url):
            # A next link or Location that leaves the server would leak our token.
            raise FhirRequestError(None, path, "a link points outside the FHIR server; refused")
        return url

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        url = self._url(path)
        for attempt in (1, 2):
            headers = {"Accept": FHIR_JSON, **kwargs.pop("headers", {})}
            token = self.token() if self.token else None
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                self.requests += 1
                response = self.session.request(method, url, headers=headers, **kwargs)
            except requests.RequestException as exc:
                raise FhirRequestError(None, url, why_no_answer(exc)) from exc
            if response.status_code == 401 and attempt == 1 and self.refresh:
                self.refresh()
                kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
                continue
            break
        if response.status_code >= 400:
            try:
                detail = outcome_text(response.json())
            except ValueError:
                detail = "no details"
            error = FhirConflict if response.status_code == 412 else FhirRequestError
            raise error(response.status_code, url, detail)
        return response

    @staticmethod
    def _json(response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError as exc:
            raise FhirRequestError(response.status_code, response.url, "not JSON") from exc
        if not isinstance(body, dict):
            raise FhirRequestError(response.status_code, response.url, "not a FHIR resource")
        return body

    def capabilities(self) -> dict:
        return self._json(self._send("GET", "metadata"))

    def read(self, resource_type: str, resource_id: str) -> dict:
        return self.read_with_etag(resource_type, resource_id)[0]

    def read_with_etag(self, resource_type: str, resource_id: str) -> tuple[dict, str | None]:
        response = self._send("GET", f"{resource_type}/{resource_id}")
        return self._json(response), response.headers.get("ETag")

    def search(self, resource_type: str, params: dict[str, str] | None = None) -> SearchResult:
        """Every page of a search; OperationOutcome entries are kept apart as outcomes."""
        result = SearchResult()
        response = self._send("GET", resource_type, params=params or {})
        while True:
            bundle = self._json(response)
            result.pages += 1
            for entry in bundle.get("entry") or []:
                resource = (entry or {}).get("resource")
                if not isinstance(resource, dict):
                    continue
                mode = (entry.get("search") or {}).get("mode")
                if resource.get("resourceType") == "OperationOutcome" or mode == "outcome":
                    result.outcomes.append(resource)
                else:
                    result.resources.append(resource)
            following = next(
                (
                    link.get("url")
                    for link in bundle.get("link") or []
                    if link.get("relation") == "next"
                ),
                None,
            )
            if not following or result.pages >= MAX_PAGES:
                return result
            response = self._send("GET", following)

    def create(self, resource: dict, if_none_exist: str | None = None) -> tuple[dict, bool]:
        """POST a resource; with ``if_none_exist`` a match returns it and False (200)."""
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        response = self._send(
            "POST", resource["resourceType"], data=json.dumps(resource), headers=headers
        )
        body = self._json(response) if response.content else resource
        return body, response.status_code == 201

    def update(self, resource: dict, if_match: str | None = None) -> tuple[dict, str | None]:
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = if_match
        response = self._send(
            "PUT",
            f"{resource['resourceType']}/{resource['id']}",
            data=json.dumps(resource),
            headers=headers,
        )
        body = self._json(response) if response.content else resource
        return body, response.headers.get("ETag")

    def batch(self, bundle: dict) -> dict:
        response = self._send(
            "POST",
            self.base_url.rstrip("/"),
            data=json.dumps(bundle),
            headers={"Content-Type": FHIR_JSON},
        )
        return self._json(response)
