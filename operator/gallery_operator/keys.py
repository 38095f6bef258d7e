"""The one key of a download as it travels: kopf's index, the work queue, admission, the report inbox, the
report endpoint's identities and the controller's memories all hold a download as `Key(namespace, name)`."""

from __future__ import annotations

from typing import NamedTuple


class Key(NamedTuple):
    """A download by namespace and name; `Key(namespace, "")` is the work queue's key of a namespace's NetworkPolicy.
    A tuple underneath (kopf's index keys compare equal to it)."""

    namespace: str
    name: str
