"""Hostile token payloads at the real operator's report endpoint: the report gate decodes a token's unverified
payload, and no payload may make that look fail with an error (a 500 and a logged traceback per request, which a
flood turns into a flood of the operator's log)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from gallery_harness.localoperator import OperatorProcess
from gallery_harness.tokens import HOSTILE_PAYLOADS, hostile_token


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS.values(), ids=list(HOSTILE_PAYLOADS))
def test_a_hostile_token_payload_is_refused_as_malformed(operator: OperatorProcess, payload: bytes) -> None:
    token = hostile_token(payload)
    body = json.dumps({"run": "x"}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(operator.report_url, data=body, method="POST", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert 'gallery_operator_reports_refused_total{reason="malformed-token"}' in operator.metrics()
