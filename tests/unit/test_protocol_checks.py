"""The stand-ins answer ``isinstance`` as requests' own protocols do, on every kind of value requests is handed, and
they are in place for the requests this project pins."""

from __future__ import annotations

import collections
import io
import types
from typing import Any

import pytest
import requests
import requests.adapters
import requests.models
import requests.utils
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict

from gallery_operator.worker import protocol_checks
from gallery_operator.worker.protocol_checks import QUICKENED, MemberCheck, stand_in


class _Owns:
    def __init__(self, member: str, value: Any) -> None:
        setattr(self, member, value)


class _NoneOnClass:
    items = None
    read = None


class _NoneOnClassSetOnValue(_NoneOnClass):
    def __init__(self) -> None:
        setattr(self, "items", lambda: ())  # noqa: B010 - past the class's None, as a value may be built
        setattr(self, "read", lambda: ())  # noqa: B010


class _Method:
    def items(self) -> list[Any]:
        return []

    def read(self, size: int = -1) -> bytes:
        return b""


class _MethodHiddenByValue(_Method):
    def __init__(self) -> None:
        self.items = self.read = None  # type: ignore[method-assign,assignment]


class _Lookup:
    def __getattr__(self, name: str) -> Any:
        return lambda: ()


class _Refuses:
    @property
    def items(self) -> Any:
        raise AttributeError("no")

    @property
    def read(self) -> Any:
        raise AttributeError("no")


class _PropertyNone:
    items = property(lambda self: None)
    read = property(lambda self: None)


def _values() -> list[Any]:
    values: list[Any] = [
        None,
        0,
        True,
        1.5,
        "text",
        b"bytes",
        bytearray(b"x"),
        [],
        [("a", "b")],
        (("a", "b"),),
        {"a": "b"},
        {},
        collections.OrderedDict(a="b"),
        collections.defaultdict(list),
        CaseInsensitiveDict({"A": "b"}),
        RequestsCookieJar(),
        types.MappingProxyType({"a": 1}),
        io.BytesIO(b"x"),
        io.StringIO("x"),
        iter([("a", "b")]),
        (x for x in range(0)),
        object(),
        _NoneOnClass(),
        _NoneOnClassSetOnValue(),
        _Method(),
        _MethodHiddenByValue(),
        _Lookup(),
        _Refuses(),
        _PropertyNone(),
        dict,
        io.BytesIO,
        requests,
    ]
    for member in ("items", "read"):
        values += [_Owns(member, None), _Owns(member, 0), _Owns(member, lambda: ())]
    return values


@pytest.mark.parametrize(("module", "name", "member"), QUICKENED)
def test_the_stand_in_answers_as_the_protocol_on_every_kind_of_value(module: str, name: str, member: str) -> None:
    protocol = getattr(__import__(module, fromlist=[name]), name)
    if type(protocol) is MemberCheck:
        protocol = protocol.protocol
    quick = stand_in(protocol, member)
    for value in _values():
        assert isinstance(value, quick) == isinstance(value, protocol), (name, value)
        kind = type(value)
        assert issubclass(kind, quick) == issubclass(kind, protocol), (name, kind)


def test_the_pinned_requests_is_quickened_and_sends_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name, _ in QUICKENED:
        held = getattr(__import__(module, fromlist=[name]), name)
        monkeypatch.setattr(f"{module}.{name}", held)  # put back after the test
        assert type(held) is MemberCheck or protocol_checks.members(held) is not None, (
            f"{module}.{name} is no longer a one-method protocol: the stand-ins no longer apply (see protocol_checks)"
        )
    protocol_checks.install()
    protocol_checks.install()  # a second install changes nothing
    quick_items, quick_read = (getattr(__import__(m, fromlist=[n]), n) for m, n, _ in QUICKENED)
    assert type(quick_items) is MemberCheck and type(quick_read) is MemberCheck
    assert quick_items.protocol is not quick_items
    merged = requests.sessions.merge_setting({"b": "2"}, CaseInsensitiveDict({"a": "1"}))
    assert dict(merged) == {"a": "1", "b": "2"}
    prepared = requests.Request("POST", "http://127.0.0.1/", params={"q": "1"}, data=io.BytesIO(b"abc")).prepare()
    assert prepared.url == "http://127.0.0.1/?q=1"
    assert prepared.headers["Content-Length"] == "3"
    with pytest.raises(ValueError, match="2-tuples"):
        requests.utils.to_key_val_list("no")  # type: ignore[arg-type]
