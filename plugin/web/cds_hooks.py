"""CDS Hooks service: discovery, encounter-discharge and patient-view, one card per problem.

No standard hook fires at note signing, so this complements the chart launch: the card links
back to the app with a SMART link. Requests must carry the EHR's signed JWT (CDS Hooks 2.0
security): signature from the EHR's JWKS, ``aud`` our service URL, ``iat`` and ``exp`` with a
lifetime of at most 5 minutes, nothing dated in the future beyond a small clock skew, and a
``jti`` never seen before. A body nested deeper than ``MAX_DEPTH`` is refused before review.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from dataclasses import dataclass

import orjson
from flask import Blueprint, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from plugin.domain import Severity
from plugin.errors import InputError
from plugin.fhir.unread import unread_issue
from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.rules.episode import episode_status
from plugin.web.replay import SeenTokens, SharedSeenTokens

log = logging.getLogger(__name__)
ALGORITHMS = ["RS384", "ES384", "RS256"]
MAX_LIFETIME = 300  # seconds: CDS Hooks 2.0 says exp is at most 5 minutes after iat
CLOCK_SKEW = 30  # seconds of clock difference tolerated between the EHR and us
MAX_DEPTH = 64  # a CDS Hooks request nests about 10 deep; FHIR resources rarely beyond 20
INDICATOR = {Severity.ERROR: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "goals": "Goal?patient={{context.patientId}}",
    "notes": "DocumentReference?patient={{context.patientId}}",
    "encounters": "Encounter?patient={{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}",
    # the episode (contract §2b): plans of care with their signatures (Epic requires a
    # category on CarePlan; both vendors include Provenance by _revinclude), and the orders
    "careplans": "CarePlan?patient={{context.patientId}}&category=assess-plan"
    "&_revinclude=Provenance:target",
    "orders": "ServiceRequest?patient={{context.patientId}}",
}
SERVICES = {
    "unitguard-encounter-discharge": {
        "hook": "encounter-discharge",
        "title": "unitguard: therapy units and documentation",
        "description": "Checks that the visit's documented minutes, goals and measures support "
        "the billed timed units (CPT 97112 and neighbours).",
        "prefetch": {
            **PREFETCH,
            "encounter": "Encounter/{{context.encounterId}}",
            "charges": "ChargeItem?context=Encounter/{{context.encounterId}}",
        },
    },
    "unitguard-patient-view": {
        "hook": "patient-view",
        "title": "unitguard: last therapy visit",
        "description": "Reviews the patient's latest therapy visit for unsupported units.",
        "prefetch": PREFETCH,
    },
}


@dataclass(frozen=True)
class CdsClient:
    """An EHR allowed to call us: the JWT ``iss`` it uses and its signing keys."""

    issuer: str
    jwks: dict


def load_cds_clients(registry: object) -> list[CdsClient]:
    """CDS clients from the EHR list: ``[ehr.quirks] cds_issuer`` and ``cds_jwks_file``."""
    clients = []
    for ehr in getattr(registry, "ehrs", ()):
        quirks = ehr.quirks
        if quirks.get("cds_issuer") and quirks.get("cds_jwks_file"):
            with open(quirks["cds_jwks_file"], encoding="utf-8") as fh:
                clients.append(CdsClient(quirks["cds_issuer"], json.load(fh)))
    return clients


def _error(status: int, message: str):
    return jsonify({"error": message}), status


def verify(
    header: str,
    clients: dict[str, CdsClient],
    audience: str,
    seen: SeenTokens | SharedSeenTokens,
) -> str:
    """The issuer of a valid CDS Hooks JWT; ValueError with a reason otherwise."""
    if not header.startswith("Bearer "):
        raise ValueError("no bearer JWT")
    token = header[7:].strip()
    try:
        payload = token.split(".")[1]
        unverified = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        client = clients.get(unverified.get("iss"))
        if client is None:
            raise ValueError("unknown issuer")
        decoded = jwt.decode(token, KeySet.import_key_set(client.jwks), algorithms=ALGORITHMS)
    except (JoseError, IndexError, TypeError, AttributeError, ValueError, binascii.Error) as exc:
        raise ValueError("invalid signature or token") from exc
    claims = decoded.claims
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise ValueError("wrong audience")
    now = time.time()
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not _number(exp) or exp <= now:
        raise ValueError("expired")
    if not _number(iat) or iat > now + CLOCK_SKEW:
        raise ValueError("missing iat or issued in the future")
    if nbf is not None and (not _number(nbf) or nbf > now + CLOCK_SKEW):
        raise ValueError("not valid yet")
    if exp - iat > MAX_LIFETIME or exp > now + MAX_LIFETIME + CLOCK_SKEW:
        raise ValueError("lifetime longer than 5 minutes")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not seen.first_use(client.issuer, jti, float(exp)):
        raise ValueError("missing or replayed jti")
    return client.issuer


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def depth(value: object, limit: int = MAX_DEPTH) -> int:
    """How deep ``value`` nests (without recursion), counting stops past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            break
        stack.extend(
            (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
        )
    return deepest


def _body() -> object:
    """The request's JSON, or None when it is not JSON or nests too deep (orjson itself refuses
    past 1024 levels, before Python's recursion limit could be reached)."""
    try:
        body = orjson.loads(request.get_data())
    except orjson.JSONDecodeError:
        return None
    return body if depth(body) <= MAX_DEPTH else None


def _unread(prefetch: dict, templates: dict[str, str]) -> list[dict]:
    """Reading notes for what the EHR did not prefetch (contract §2, "Unread is not absent"): a
    key answered with an OperationOutcome (CDS Hooks 2.0: how a client reports a failed
    prefetch), or left out (the client "MUST omit the prefetch key if relevant details cannot
    be provided") while it answered others of our templates. A null value means no data: read.
    The Patient and the Encounter are not needed by the rules (the visit is, or nothing is)."""
    followed = any(key in prefetch for key in templates)
    notes = []
    for key, template in templates.items():
        rtype = template.split("?")[0].split("/")[0]
        if rtype in ("Patient", "Encounter"):
            continue
        value = prefetch.get(key)
        failed = isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"
        if failed or (followed and key not in prefetch):
            why = "answered with an OperationOutcome" if failed else "left out"
            notes.append(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [unread_issue(rtype, f"the EHR's prefetch of {rtype} was {why}")],
                }
            )
    return notes


def _resources(prefetch: dict) -> list[dict]:
    found = []
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            found += [
                e["resource"]
                for e in value.get("entry") or []
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            ]
        elif value.get("resourceType"):
            found.append(value)
    return found


def create_cds_blueprint(
    clients: list[CdsClient],
    public_url: str,
    seen: SeenTokens | SharedSeenTokens | None = None,
) -> Blueprint:
    """``public_url`` is the app's own base URL: the JWT audience is
    ``{public_url}/cds-services/{id}`` and card links point at ``{public_url}/launch``.
    ``seen``: the jti values used (plugin.web.replay; the app shares them between workers)."""
    launch_url = f"{public_url.rstrip('/')}/launch"
    bp = Blueprint("cds", __name__, url_prefix="/cds-services")
    by_issuer = {c.issuer: c for c in clients}
    seen = seen if seen is not None else SeenTokens()

    @bp.get("")
    def discovery():
        return jsonify({"services": [{"id": sid, **spec} for sid, spec in SERVICES.items()]})

    @bp.post("/<service_id>")
    def call(service_id: str):
        if service_id not in SERVICES:
            return _error(404, "unknown service")
        try:
            audience = f"{public_url.rstrip('/')}/cds-services/{service_id}"
            verify(request.headers.get("Authorization", ""), by_issuer, audience, seen)
        except ValueError as exc:
            log.warning("CDS Hooks call refused: %s", exc)
            return _error(401, "unauthorized")
        body = _body()
        if not isinstance(body, dict) or body.get("hook") != SERVICES[service_id]["hook"]:
            return _error(400, "the body is not a CDS Hooks request for this service")
        context = body.get("context") or {}
        prefetch = body.get("prefetch")
        if not isinstance(prefetch, dict):
            return jsonify(
                {
                    "cards": [
                        _card(
                            "info",
                            "unitguard needs the prefetched visit data",
                            "Open unitguard from the chart to review.",
                            None,
                        )
                    ]
                }
            )
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in _resources(prefetch)]
            + [
                {"resource": note, "search": {"mode": "outcome"}}
                for note in _unread(prefetch, SERVICES[service_id]["prefetch"])
            ],
        }
        encounter = context.get("encounterId")
        try:
            report = review_bundle(
                bundle, encounter_id=encounter, policy=load_policy(), source="prefetch"
            )
        except InputError:
            return jsonify({"cards": []})
        cards = [
            _card(
                INDICATOR[f.severity],
                f"{f.rule}{' ' + f.code if f.code else ''}: {f.message}"[:139],
                f"{f.message}\n\n**Fix:** {f.fix}\n\n*{f.citation}*",
                report.visit.encounter,
            )
            for f in report.findings
            if f.severity is not Severity.INFO
        ]
        if SERVICES[service_id]["hook"] == "patient-view":
            cards += _episode_cards(report)
        log.info("CDS Hooks %s: %d card(s)", service_id, len(cards))
        return jsonify({"cards": cards})

    def _episode_cards(report) -> list[dict]:
        """When the chart is opened: where the patient's episode stands (the review page's
        episode lines), a warning when something falls due at the next visit or is unknown."""
        cards = []
        for status in episode_status(report.visit, load_policy()):
            lines = status.lines
            summary = "; ".join(lines)
            if len(summary) > 139:
                summary = summary[:138] + "…"
            indicator = "warning" if status.warnings or status.unknown else "info"
            cards.append(_card(indicator, summary, "\n\n".join(lines), report.visit.encounter))
        return cards

    def _card(indicator: str, summary: str, detail: str, encounter: str | None) -> dict:
        card = {
            "uuid": str(uuid.uuid4()),
            "summary": summary,
            "detail": detail,
            "indicator": indicator,
            "source": {"label": "unitguard"},
        }
        if encounter:
            card["links"] = [
                {
                    "label": "Open unitguard review",
                    "url": launch_url,
                    "type": "smart",
                    "appContext": json.dumps({"encounter": encounter}),
                }
            ]
        return card

    return bp
