"""Tokens and launch context from the token response; never shown in repr or logs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenSet:
    access_token: str
    expires_at: float
    scope: tuple[str, ...] = ()
    refresh_token: str | None = None
    id_token: str | None = None

    def __repr__(self) -> str:
        return f"TokenSet(scope={' '.join(self.scope)!r}, expires_at={self.expires_at:.0f})"

    def expires_soon(self, within: float = 60.0, now: float | None = None) -> bool:
        return (now or time.time()) >= self.expires_at - within

    def to_dict(self) -> dict:
        return dict(self.__dict__, scope=list(self.scope))

    @classmethod
    def from_dict(cls, data: dict) -> TokenSet:
        return cls(**{**data, "scope": tuple(data.get("scope") or ())})


@dataclass(frozen=True)
class LaunchContext:
    patient: str | None
    encounter: str | None
    fhir_user: str | None
    need_patient_banner: bool = True
    intent: str | None = None
    fhir_context: tuple[str, ...] = field(default=())


def parse_token_response(body: dict, now: float | None = None) -> tuple[TokenSet, LaunchContext]:
    """The tokens and the launch context of a token response. The id_token is kept, unread:
    its claims are used only once verified (smart_launch.id_token, in ``finish_launch``)."""
    now = now or time.time()
    tokens = TokenSet(
        access_token=body["access_token"],
        expires_at=now + float(body.get("expires_in") or 300),
        scope=tuple(str(body.get("scope", "")).split()),
        refresh_token=body.get("refresh_token"),
        id_token=body.get("id_token"),
    )
    context = LaunchContext(
        patient=body.get("patient"),
        encounter=body.get("encounter"),
        fhir_user=body.get("fhirUser") if isinstance(body.get("fhirUser"), str) else None,
        need_patient_banner=bool(body.get("need_patient_banner", True)),
        intent=body.get("intent"),
        fhir_context=tuple(
            c.get("reference", "") for c in body.get("fhirContext") or [] if isinstance(c, dict)
        ),
    )
    return tokens, context
