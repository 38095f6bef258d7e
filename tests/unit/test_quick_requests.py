"""The quick answers are the libraries' own answers: the protocol stand-ins on every kind of value requests is
handed, the header parser on generated header blocks plain and odd, the cookie shortcuts on jars and responses with
and without cookies; and they are in place for the libraries this project pins."""

from __future__ import annotations

import collections
import email.message
import email.parser
import http.client
import http.cookiejar
import io
import itertools
import random
import sys
import types
from typing import Any

import pytest
import requests
import requests.adapters
import requests.models
import requests.utils
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict

from gallery_operator.worker import quick_requests
from gallery_operator.worker.quick_requests import (
    QUICKENED,
    MemberCheck,
    extract_cookies_to_jar,
    get_cookie_header,
    parse_headers,
    stand_in,
)


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


class _Disguised:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return dict


def _past_the_member(protocol: Any, member: str) -> list[Any]:
    """Values the protocol admits for other reasons than the member on their class: a class named its subclass
    (with the member None), a class registered with it, a value whose ``__class__`` is another class, a class whose
    method was deleted after it was checked once (the protocol's cache still admits it)."""
    named = type("Named", (protocol,), {member: None})
    registered = type("Registered", (), {})
    protocol.register(registered)
    forgotten = type("Forgotten", (), {member: lambda self: ()})
    assert isinstance(forgotten(), protocol)
    delattr(forgotten, member)
    return [named(), registered(), _Disguised(), forgotten()]


@pytest.mark.parametrize(("module", "name", "member"), QUICKENED)
def test_the_stand_in_answers_as_the_protocol_on_every_kind_of_value(module: str, name: str, member: str) -> None:
    protocol = getattr(__import__(module, fromlist=[name]), name)
    if type(protocol) is MemberCheck:
        protocol = protocol.protocol
    quick = stand_in(protocol, member)
    for value in _values() + _past_the_member(protocol, member):
        assert isinstance(value, quick) == isinstance(value, protocol), (name, value)
        kind = type(value)
        assert issubclass(kind, quick) == issubclass(kind, protocol), (name, kind)


INSTALLED = [
    *((module, name) for module, name, _ in QUICKENED),
    ("http.client", "parse_headers"),
    ("requests.sessions", "extract_cookies_to_jar"),
    ("requests.adapters", "extract_cookies_to_jar"),
    ("requests.models", "get_cookie_header"),
]


def test_the_pinned_libraries_are_quickened_and_send_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name in INSTALLED:
        monkeypatch.setattr(f"{module}.{name}", getattr(__import__(module, fromlist=[name]), name))  # put back after
    for module, name, _ in QUICKENED:
        held = getattr(__import__(module, fromlist=[name]), name)
        assert type(held) is MemberCheck or quick_requests.members(held) is not None, (
            f"{module}.{name} is no longer a one-method protocol: the stand-ins no longer apply (see quick_requests)"
        )
    quick_requests.install()
    quick_requests.install()  # a second install changes nothing
    assert http.client.parse_headers is parse_headers
    assert requests.sessions.extract_cookies_to_jar is extract_cookies_to_jar  # type: ignore[attr-defined]
    assert requests.adapters.extract_cookies_to_jar is extract_cookies_to_jar  # type: ignore[attr-defined]
    assert requests.models.get_cookie_header is get_cookie_header  # type: ignore[attr-defined]
    stand_ins = [getattr(__import__(m, fromlist=[n]), n) for m, n, _ in QUICKENED]
    # The stand-ins follow 3.11's way of checking: later Pythons keep their own (see quick_requests.install).
    assert [type(c) is MemberCheck for c in stand_ins] == [sys.version_info < (3, 12)] * len(QUICKENED)
    merged = requests.sessions.merge_setting({"b": "2"}, CaseInsensitiveDict({"a": "1"}))
    assert dict(merged) == {"a": "1", "b": "2"}
    prepared = requests.Request("POST", "http://127.0.0.1/", params={"q": "1"}, data=io.BytesIO(b"abc")).prepare()
    assert prepared.url == "http://127.0.0.1/?q=1"
    assert prepared.headers["Content-Length"] == "3"
    with pytest.raises(ValueError, match="2-tuples"):
        requests.utils.to_key_val_list("no")  # type: ignore[arg-type]


NAMES = [b"Content-Type", b"content-length", b"X-A", b"Set-Cookie", b"A b", b"", b"From ", b"N\xe9", b"x\x7f", b"_-.~!"]
SEPARATORS = [b":", b": ", b":\t", b":  \t ", b" :", b""]
VALUES = [
    b"image/jpeg",
    b"20480",
    b"",
    b"  ",
    b"a\rb",
    b"a\nb",
    b"caf\xe9 \x85 \x0b \x0c \x1c",
    b"trailing \t",
    b"multipart/byteranges; boundary=XYZ",
    b"message/rfc822",
    b"Message/Partial",
    b"text/plain; charset=utf-8",
    b"a=1; Path=/",
    b"\x00",
]
ENDS = [b"\r\n", b"\n", b"\r\r\n", b"\r"]
LAST = [b"\r\n", b"\n", b""]


def _state(message: Any) -> Any:
    """Everything a parsed message holds, nested messages and defects included, in comparable form."""
    payload = message.get_payload()
    return (
        [(k, v) for k, v in vars(message).items() if k not in ("_payload", "defects", "policy")],
        [_state(part) for part in payload] if isinstance(payload, list) else payload,
        [(type(d).__name__, str(d)) for d in message.defects],
        type(message),
        repr(message.policy),
    )


def _library(block: bytes) -> Any:
    lines = http.client._read_headers(io.BytesIO(block))  # type: ignore[attr-defined]
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(b"".join(lines).decode("iso-8859-1"))


def _blocks() -> list[bytes]:
    lines = [n + s + v for n, s, v in itertools.product(NAMES, SEPARATORS, VALUES)]
    blocks = [b"\r\n", b"", b"\n", b"Content-Type: image/jpeg\r\n Folded: on\r\n\r\n", b"From x\r\nA: b\r\n\r\n"]
    blocks += [line + end + last for line in lines for end in ENDS[:2] for last in LAST]
    generator = random.Random(26)
    for _ in range(4000):
        count = generator.randint(1, 8)
        body = b"".join(generator.choice(lines) + generator.choice(ENDS) for _ in range(count))
        blocks.append(body + generator.choice(LAST) + b"ignored: after the block\r\n")
    return blocks


def test_the_header_parser_builds_the_message_the_email_parser_builds() -> None:
    quick = 0
    for block in _blocks():
        expected = _library(block)
        got = parse_headers(io.BytesIO(block))
        assert _state(got) == _state(expected), block
        quick += block.endswith(b"\r\n\r\n") and all(b"\n" not in line for line in block.split(b"\r\n")[:-2])
    assert quick > 500  # the direct path was taken, not only the parser


def test_the_header_parser_keeps_http_clients_limits() -> None:
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"A: " + b"x" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        parse_headers(io.BytesIO(b"A: b\r\n" * 101 + b"\r\n"))
    stream = io.BytesIO(b"A: b\r\n\r\nbody")
    parse_headers(stream)
    assert stream.read() == b"body"  # the body is left where it was


def _response(*headers: tuple[str, str]) -> Any:
    message = http.client.HTTPMessage()
    for name, value in headers:
        message[name] = value
    return types.SimpleNamespace(_original_response=types.SimpleNamespace(msg=message))


def _jars() -> list[RequestsCookieJar]:
    empty, holding, emptied = RequestsCookieJar(), RequestsCookieJar(), RequestsCookieJar()
    holding.set("kept", "1", domain="127.0.0.1", path="/")
    emptied.set("gone", "1", domain="127.0.0.1", path="/")
    emptied.clear("127.0.0.1", "/", "gone")  # an emptied jar keeps its domain's (empty) entry
    rfc2965 = RequestsCookieJar(policy=http.cookiejar.DefaultCookiePolicy(rfc2965=True))  # takes Set-Cookie2 too
    return [empty, holding, emptied, rfc2965]


def _cookies(jar: RequestsCookieJar) -> list[tuple[str, str | None, str, str]]:
    return sorted((c.name, c.value, c.domain, c.path) for c in jar)


@pytest.mark.parametrize(
    "headers",
    [
        (),
        (("Set-Cookie", "a=1; Path=/"),),
        (("set-cookie", "b=2"),),
        (("Set-Cookie2", 'c=3; Version="1"'),),
        (("Content-Type", "image/jpeg"), ("SET-COOKIE", "d=4")),
    ],
)
def test_the_cookie_shortcuts_leave_jars_and_headers_as_requests_does(headers: tuple[tuple[str, str], ...]) -> None:
    request = requests.Request("GET", "http://127.0.0.1/a/b.jpg").prepare()
    for index in range(len(_jars())):
        quick_jar, library_jar = _jars()[index], _jars()[index]
        extract_cookies_to_jar(quick_jar, request, _response(*headers))
        requests.cookies.extract_cookies_to_jar(library_jar, request, _response(*headers))
        assert _cookies(quick_jar) == _cookies(library_jar), (headers, index)
        assert get_cookie_header(quick_jar, request) == requests.cookies.get_cookie_header(library_jar, request)
    jar = RequestsCookieJar()
    extract_cookies_to_jar(jar, request, types.SimpleNamespace())  # no response behind it: nothing, as requests does
    assert _cookies(jar) == []


def test_another_message_class_is_parsed_as_http_client_parses_it() -> None:
    # http.server hands its own class; a class with a policy of its own builds other header objects than compat32's
    block = b"Date: Tue, 01 Jan 2030 00:00:00 GMT\r\nX-A: b\r\n\r\n"
    expected: Any = email.parser.Parser(_class=email.message.EmailMessage).parsestr(block.decode("iso-8859-1"))
    got = parse_headers(io.BytesIO(block), _class=email.message.EmailMessage)
    assert _state(got) == _state(expected)
    assert type(got["Date"]) is type(expected["Date"])
