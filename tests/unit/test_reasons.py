"""The reasons users and alerts match on are declared once (api/status.py) and the README lists exactly those."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from gallery_operator.api.status import (
    EVENT_REASONS,
    CleanupReason,
    ConditionReason,
    EventReason,
    FailureReason,
    PhaseReason,
    event_reason,
)
from gallery_operator.status import RULES
from tests import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def listed(start: str, end: str) -> set[str]:
    """The `Reason`s the README names between two phrases."""
    text = README[README.index(start) : README.index(end, README.index(start))]
    return set(re.findall(r"`([A-Z][A-Za-z]+)`", text))


def declared(*types: object) -> set[str]:
    return {value for kind in types for value in get_args(kind)}


def test_the_readme_lists_every_condition_reason_and_no_other() -> None:
    phases = listed("with CamelCase reasons:", "and the failure reasons below")
    failures = listed("Reasons are stable:", "A failure of the transport")
    assert phases == declared(PhaseReason)
    assert failures == declared(FailureReason)
    assert phases | failures == declared(*get_args(ConditionReason))


def test_the_readme_lists_every_cleanup_event_reason() -> None:
    assert listed("when a deletion under", "(the object goes anyway)") == declared(CleanupReason)
    assert declared(*get_args(EventReason)) == EVENT_REASONS == declared(FailureReason, PhaseReason, CleanupReason)


def test_an_undeclared_event_reason_is_an_error() -> None:
    assert event_reason("DataDeleted") == "DataDeleted"
    with pytest.raises(ValueError, match="JobRemoved"):
        event_reason("JobRemoved")


def test_every_phase_rule_is_named_and_the_chain_ends_in_a_rule_that_always_speaks() -> None:
    names = [name for name, _ in RULES]
    assert len(names) == len(set(names)) and names[-1] == "Pending"
