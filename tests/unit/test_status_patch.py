"""The status patch is a JSON merge patch (RFC 7386), which the API server applies key by key at every depth: the
patch must turn what the server holds into the status written, nested keys removed included (a worker's final
report without a catalogue location left the old location in the stored status)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gallery_operator.apply import status_patch
from tests.unit.builders import merged


def test_a_nested_key_removed_becomes_null() -> None:
    before = {"phase": "Running", "catalogue": {"items": 7, "location": "pvc://media/a"}}
    after = {"phase": "Failed", "catalogue": {"items": 7}}
    assert status_patch(before, after) == {"phase": "Failed", "catalogue": {"location": None}}


values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text("ab", max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3),
    max_leaves=12,
)
# A stored status has no null values (dumped without them), at any depth.
statuses = st.dictionaries(st.sampled_from("abcd"), values, max_size=4).map(
    lambda d: merged({}, d)  # drops the nulls of objects, as a merge into nothing does
)


@given(statuses, statuses)
def test_the_patch_turns_the_stored_status_into_the_written_one(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert merged(before, status_patch(before, after)) == after
