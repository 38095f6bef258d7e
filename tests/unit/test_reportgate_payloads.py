"""The report gate's look at an unverified token never fails with an error, whatever the payload (the e2e test
against the real operator is tests/e2e/test_report_gate_tokens.py)."""

from __future__ import annotations

import pytest

from gallery_harness.tokens import HOSTILE_PAYLOADS, hostile_token
from gallery_operator.reportgate import precheck


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS.values(), ids=list(HOSTILE_PAYLOADS))
def test_a_hostile_payload_is_malformed(payload: bytes) -> None:
    refusal = precheck(hostile_token(payload), "gallery-operator.dev", 0.0, lambda namespace, pod: True)
    assert refusal == "malformed-token"
