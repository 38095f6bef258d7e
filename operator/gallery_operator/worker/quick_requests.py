"""Work the HTTP stack repeats for every request, given the same answer at less cost, for the worker's process.

At zero latency a small item costs the worker about 1.3 ms, a third of it in requests, urllib3 and http.client. Three
parts of that are general work for a case the worker's requests almost always are, each answered here exactly as
the library answers it, and handed to the library only where the pinned version holds what this module expects
(tests/unit/test_quick_requests.py compares the answers on a range of inputs and says when an upgrade changes them):

- requests (2.33 on) asks ``isinstance(value, SupportsItems)`` of every header, parameter and proxy mapping it merges,
  and ``isinstance(data, SupportsRead)`` of a request's body: eight to nine checks a request. Both are runtime-checkable
  ``typing.Protocol`` classes, and Python 3.11 lists a protocol's members afresh on every such check (3.5 us each, about
  30 us a request; Python 3.12 caches them). ``MemberCheck`` gives 3.11's answer for a protocol of one method.
- http.client hands a response's header lines to the email package's parser (16 us for six headers). Lines that are
  each one plain ``Name: value`` pair ending in CRLF give the same message built directly; any other block (folded
  lines, bare line ends, odd names) still goes to the parser.
- requests reads a response's cookies into two jars and writes a request's cookie header from a jar through
  http.cookiejar's general machinery (mock request and response objects, locks, URL parsing: 15 us a request). A
  response without a ``Set-Cookie`` or ``Set-Cookie2`` header gives no cookie, and a jar without cookies gives no
  header: those cases are answered at once for requests' own jar class (a jar of another class keeps its own way).
"""

from __future__ import annotations

import abc
import email.message
import email.parser
import http.client
import http.cookiejar
import re
import sys
import typing
from typing import Any

import requests.adapters
import requests.cookies
import requests.models
import requests.sessions

QUICKENED = (("requests.utils", "_SupportsItems", "items"), ("requests.models", "_SupportsRead", "read"))
"""(module, name under which it holds the protocol, the protocol's one member)."""


class MemberCheck(type):
    """The metaclass of a stand-in for a runtime-checkable protocol whose one member is a method (``member``): its
    ``isinstance`` takes the steps of Python 3.11's ``_ProtocolMeta.__instancecheck__`` for such a protocol, without
    listing the protocol's members (the one step that costs): the value's class as the protocol's ABC machinery
    answers it (its cache, nominal subclasses, registered classes), then the member on the value itself, then the
    ABC's own answer for the value."""

    member = ""
    protocol: Any = None
    """The protocol it stands in for (what ``issubclass`` answers by)."""

    def __instancecheck__(cls, instance: object) -> bool:
        protocol = cls.protocol
        if abc.ABCMeta.__subclasscheck__(protocol, instance.__class__):
            return True
        if getattr(instance, cls.member, None) is not None:  # hasattr, and not blocked by None
            return True
        return abc.ABCMeta.__instancecheck__(protocol, instance)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls.protocol)


def stand_in(protocol: Any, member: str) -> MemberCheck:
    """A class whose ``isinstance`` answers as ``protocol``'s does, ``protocol`` having ``member`` alone."""
    return MemberCheck(f"Quick{protocol.__name__}", (), {"member": member, "protocol": protocol})


def members(protocol: Any) -> set[str] | None:
    """The members of a runtime-checkable protocol, as typing lists them; None for anything else."""
    if not (getattr(protocol, "_is_protocol", False) and getattr(protocol, "_is_runtime_protocol", False)):
        return None
    listed = getattr(typing, "_get_protocol_attrs", None)  # typing's own list (private, read only)
    return set(listed(protocol)) if listed is not None else None


_PLAIN_HEADER = re.compile(rb"[!-9;-~]+:[^\r\n]*\r\n")
"""A header line the email parser takes as one ``Name: value`` pair and nothing else: a name of printable characters
other than the colon, no line end but the final CRLF (the parser splits at a bare CR or LF, and takes a line that
starts with a space or tab as a folded continuation, neither of which this admits)."""


_NESTED = re.compile(rb"(?i)content-type:.*(?:multipart|message)")
"""A content type the parser reads a body for (parts, an enclosed message), even an empty one: left to it."""
_library_parse_headers = http.client.parse_headers


def parse_headers(fp: Any, _class: type[email.message.Message] = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``: the lines read as http.client reads them (its limits on length and count),
    the message built directly when every line is a plain pair (into http.client's own message class, whose policy
    is the parser's), else parsed as http.client parses it."""
    lines: list[bytes] = http.client._read_headers(fp)  # type: ignore[attr-defined]
    if _class is http.client.HTTPMessage and lines[-1] == b"\r\n" and all(_plain(line) for line in lines[:-1]):
        message = _class()
        for line in lines[:-1]:
            name, _, value = line.decode("iso-8859-1").partition(":")
            message.set_raw(name, value.lstrip(" \t")[:-2])  # as email's compat32 header_source_parse gives it
        message.set_payload("")
        return message
    return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))


def _plain(line: bytes) -> bool:
    return _PLAIN_HEADER.fullmatch(line) is not None and _NESTED.match(line) is None


_extract_cookies = requests.cookies.extract_cookies_to_jar
_cookie_header = requests.cookies.get_cookie_header
_COOKIE_HEADERS = frozenset({"set-cookie", "set-cookie2"})


def extract_cookies_to_jar(jar: Any, request: Any, response: Any) -> None:
    """requests' ``extract_cookies_to_jar``, at once for its own jar when the response sets no cookie."""
    original = getattr(response, "_original_response", None)
    if type(jar) is requests.cookies.RequestsCookieJar and original:
        headers = getattr(original, "msg", None)
        if type(headers) is http.client.HTTPMessage and not any(name.lower() in _COOKIE_HEADERS for name in headers):
            return  # http.cookiejar's make_cookies finds no header to make a cookie of
    _extract_cookies(jar, request, response)


def get_cookie_header(jar: Any, request: Any) -> str | None:
    """requests' ``get_cookie_header``, at once for its own jar when the jar holds no cookie."""
    if type(jar) is requests.cookies.RequestsCookieJar and not getattr(jar, "_cookies", True):
        return None  # http.cookiejar's add_cookie_header finds no cookie for any request
    result: str | None = _cookie_header(jar, request)
    return result


_COOKIE_USERS = (
    (requests.sessions, "extract_cookies_to_jar", _extract_cookies, extract_cookies_to_jar),
    (requests.adapters, "extract_cookies_to_jar", _extract_cookies, extract_cookies_to_jar),
    (requests.models, "get_cookie_header", _cookie_header, get_cookie_header),
)


def install() -> None:
    """For the rest of this process (idempotent): the quick answers where the libraries look their work up. The
    protocol stand-ins on Python 3.11 only: 3.12 caches a protocol's members itself, and looks them up as static
    attributes (a value's ``__getattr__`` does not count), which the stand-ins do not follow."""
    for module_name, name, member in QUICKENED if sys.version_info < (3, 12) else ():
        module = sys.modules.get(module_name)
        protocol = getattr(module, name, None)
        if protocol is not None and type(protocol) is not MemberCheck and members(protocol) == {member}:
            setattr(module, name, stand_in(protocol, member))
    library = http.client.parse_headers is _library_parse_headers and _library_parse_headers.__module__ == "http.client"
    if library and callable(getattr(http.client, "_read_headers", None)):
        setattr(http.client, "parse_headers", parse_headers)  # noqa: B010 - its callers look it up there
    for module, name, library_function, quick in _COOKIE_USERS if _cookie_jar_as_read() else ():
        if getattr(module, name, None) is library_function:
            setattr(module, name, quick)


def _cookie_jar_as_read() -> bool:
    """Whether requests' jar takes cookies and makes headers with http.cookiejar's own methods, which find nothing
    to do in the cases answered at once (a jar class of requests' that overrides them would need a fresh look)."""
    jar = requests.cookies.RequestsCookieJar
    base = http.cookiejar.CookieJar
    methods = ("extract_cookies", "make_cookies", "add_cookie_header", "_cookies_for_request", "clear_expired_cookies")
    return all(getattr(jar, name) is getattr(base, name) for name in methods)
