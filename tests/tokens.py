"""Made-up service-account tokens for tests of the report endpoint: shaped like a worker's, signed by nobody."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


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
