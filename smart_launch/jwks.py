"""The app's signing key for private_key_jwt, and the public JWKS it serves."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from joserfc.jwk import RSAKey


def load_key(pem_path: str | None) -> RSAKey:
    """The key in ``pem_path``; without one, a key generated for this process (a dev default:
    EHRs that fetch the JWKS by URL see the new key after a restart)."""
    if pem_path:
        return RSAKey.import_key(Path(pem_path).read_bytes())
    return _ephemeral()


@lru_cache(maxsize=1)
def _ephemeral() -> RSAKey:
    return RSAKey.generate_key(2048)


def public_jwks(pem_path: str | None) -> dict:
    key = load_key(pem_path)
    public = key.as_dict(private=False)
    public.update(kid=key.thumbprint(), alg="RS384", use="sig")
    return {"keys": [public]}
