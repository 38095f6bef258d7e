"""requests' runtime checks against its one-method protocols, answered without walking the protocol each time.

requests (2.33 on) asks ``isinstance(value, SupportsItems)`` of every header, parameter and proxy mapping it merges,
and ``isinstance(data, SupportsRead)`` of a request's body: eight to nine checks a request. Both are runtime-checkable
``typing.Protocol`` classes, and Python 3.11 lists a protocol's members afresh on every such check (3.5 us each: about
30 us of a small item's 1.3 ms at zero latency, both engines alike; Python 3.12 caches them). ``MemberCheck`` gives the
same answer for a protocol of one method: the class of the value defines the member (not None there), or the value
itself has it (not None). ``install`` puts such a check where requests' modules look the protocols up, only where
they hold the protocols this module knows (tests/unit/test_protocol_checks.py says when a requests upgrade changes
them, and compares the answers on a range of values).
"""

from __future__ import annotations

import sys
import typing
from typing import Any

QUICKENED = (("requests.utils", "_SupportsItems", "items"), ("requests.models", "_SupportsRead", "read"))
"""(module, name under which it holds the protocol, the protocol's one member)."""


class MemberCheck(type):
    """The metaclass of a stand-in for a runtime-checkable protocol whose one member is a method (``member``)."""

    member = ""
    protocol: Any = None
    """The protocol it stands in for (what ``issubclass`` and type checkers see elsewhere)."""

    def __instancecheck__(cls, instance: object) -> bool:
        name = cls.member
        for base in type(instance).__mro__:  # the protocol's own check on the value's class (typing._proto_hook)
            if name in base.__dict__:
                if base.__dict__[name] is not None:
                    return True
                break
        return getattr(instance, name, None) is not None  # then on the value itself (attributes set in __init__)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls.protocol)


def stand_in(protocol: Any, member: str) -> MemberCheck:
    """A class whose ``isinstance`` answers as ``protocol``'s does, ``protocol`` having ``member`` alone."""
    return MemberCheck(f"Quick{protocol.__name__}", (), {"member": member, "protocol": protocol})


def install() -> None:
    """For the rest of this process (idempotent): requests' modules check against the stand-ins."""
    for module_name, name, member in QUICKENED:
        module = sys.modules.get(module_name)
        protocol = getattr(module, name, None)
        if protocol is None or type(protocol) is MemberCheck:
            continue
        if members(protocol) == {member}:
            setattr(module, name, stand_in(protocol, member))


def members(protocol: Any) -> set[str] | None:
    """The members of a runtime-checkable protocol, as typing lists them; None for anything else."""
    if not (getattr(protocol, "_is_protocol", False) and getattr(protocol, "_is_runtime_protocol", False)):
        return None
    listed = getattr(typing, "_get_protocol_attrs", None)  # typing's own list (private, read only)
    return set(listed(protocol)) if listed is not None else None
