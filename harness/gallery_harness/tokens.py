"""Made-up service-account tokens for tests of the report endpoint: shaped like a worker's, signed by nobody."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any


def _segment(value: dict[str, Any] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


HOSTILE_PAYLOADS = {
    "nested-arrays": b"[" * 3000,
    "nested-objects": b'{"a":' * 1100,
    "nested-in-a-claim": b'{"aud":' + b"[" * 3000,
    "long-number": b'{"exp":' + b"9" * 5000 + b"}",
    "not-utf8": b'{"aud":"\xff\xfe"}',
}
"""Token payloads (a few kilobytes, as a header carries) that break a careless decoder."""


def hostile_token(payload: bytes) -> str:
    """A token of three segments whose payload is these raw bytes."""
    return f"{_segment({})}.{_segment(payload)}.{_segment(b'signature')}"


def forged_jwt(
    audience: str, namespace: str, pod: str, uid: str, expires_in: int = 3600, extra: dict[str, Any] | None = None
) -> str:
    """A token shaped like a worker's projected token naming a pod, with a random signature (each one distinct)."""
    now = int(time.time())
    claims = {
        "aud": [audience],
        "exp": now + expires_in,
        "iat": now,
        "nbf": now,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "jti": secrets.token_hex(8),
        "sub": f"system:serviceaccount:{namespace}:default",
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": pod, "uid": uid},
            "serviceaccount": {"name": "default", "uid": secrets.token_hex(8)},
        },
        **(extra or {}),
    }
    signature = base64.urlsafe_b64encode(secrets.token_bytes(256)).rstrip(b"=").decode()
    return f"{_segment({'alg': 'RS256', 'kid': secrets.token_hex(8)})}.{_segment(claims)}.{signature}"
