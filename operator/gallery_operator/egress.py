"""Egress rules as pure checks: the operator applies them to a download's URLs (and its S3 endpoint) before it
makes a Job, and the worker (``worker/egress.py``) to every name it resolves, redirects included.

Both sides spell a host the same way first (``normalize_host``): lower case, IDNA A-labels for names, and the dotted
quad for every numeric IPv4 form a resolver accepts, so ``http://2130706433/`` and ``http://127.1/`` are seen as the
loopback addresses they are. IPv6 addresses that embed an IPv4 one (mapped, translated, compatible, NAT64, 6to4,
Teredo) are refused whole, as the NetworkPolicy must.

The denied address ranges are one list, `DENIED_NETWORKS`: the admission check and the worker's guard refuse every
address in it, and the NetworkPolicy the operator keeps around workers (`networkpolicy.py`) excludes exactly these
ranges from the public addresses it lets them reach.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import idna

from gallery_operator import API_GROUP
from gallery_operator.workerconfig import Egress

ALLOWED_ANNOTATION = f"{API_GROUP}/allowed-domains"
DENIED_ANNOTATION = f"{API_GROUP}/denied-domains"
"""Namespace annotations (comma-separated domains) that tighten the operator's rules for downloads there."""

# Every spelling glibc's inet_aton (and so getaddrinfo) reads as an IPv4 address: 1 to 4 parts, each decimal,
# octal (leading 0) or hexadecimal (0x).
_NUMERIC_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


DENIED_NETWORKS = _networks(
    # IPv4: "this network", private, CGNAT (also Alibaba's metadata 100.100.100.200), loopback, link-local (the
    # metadata address 169.254.169.254), IETF protocol assignments (Oracle's metadata 192.0.0.192), documentation,
    # the 6to4 relay anycast, benchmarking, multicast, reserved and broadcast.
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    # Azure's wire server and metadata address: a public address that answers only inside Azure.
    "168.63.129.16/32",
    # IPv6: the IPv4-embedding forms, whole (a NetworkPolicy cannot judge the IPv4 address inside, so neither do
    # we): IPv4-compatible (with :: and ::1), IPv4-mapped, IPv4-translated, NAT64 (well-known and local-use), 6to4,
    # and the IETF block with Teredo; discard-only, documentation, unique local (AWS's metadata fd00:ec2::254 is
    # one), link-local, site-local and multicast.
    "::/96",
    "::ffff:0:0/96",
    "::ffff:0:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
)
"""Addresses no worker may reach unless the operator allows private networks: the one list behind the admission
check, the worker's guard and the NetworkPolicy's exceptions."""

_NO_PORT = {"http": 80, "https": 443}


class Blocked(OSError):
    """A destination the egress rules refuse; its message starts with 'blocked' for the failure classifier."""


def normalize_host(host: str | bytes) -> str:
    """The one spelling of a host that every check uses. Raises Blocked for a name no resolver would take."""
    text = (host.decode("ascii", "replace") if isinstance(host, bytes) else host).strip().lower()
    text = text.removeprefix("[").removesuffix("]").rstrip(".")
    if _NUMERIC_IPV4.match(text):
        try:
            return socket.inet_ntoa(socket.inet_aton(text))
        except OSError:
            pass  # out of range (4294967296): a name that will not resolve
    try:
        return str(ipaddress.ip_address(text.split("%", maxsplit=1)[0]))
    except ValueError:
        pass
    if text.isascii():
        return text
    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise Blocked(f"blocked by egress rules: {host!r} is not a valid host name ({error})") from error


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def entry_problem(entry: str) -> str | None:
    """Why a domain-list entry can never match a host (a wildcard, a URL, a port, an invalid name), or None."""
    try:
        host = normalize_host(entry)
    except Blocked:
        return f"{entry!r} is not a valid domain name"
    if _address(host) is not None:
        return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        return f"{entry!r} is not a domain name (write `example.org`: it covers its subdomains; no `*`, scheme or port)"
    return None


def _in_domains(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def check_host(host: str, rules: Egress) -> None:
    """Raise Blocked if the host (normalized) is not allowed by the lists."""
    if _in_domains(host, rules.denied_domains):
        raise Blocked(f"blocked by egress rules: {host} is on the denied list")
    if rules.allowed_domains and not _in_domains(host, rules.allowed_domains):
        raise Blocked(f"blocked by egress rules: {host} is not on the allowed list")


def check_address(address: str, rules: Egress) -> None:
    """Raise Blocked for an address in DENIED_NETWORKS unless private networks are allowed (every IPv6 form that
    embeds an IPv4 address is in the list whole, whatever address it embeds)."""
    if rules.allow_private_networks:
        return
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if any(ip in network for network in DENIED_NETWORKS):
        raise Blocked(f"blocked by egress rules: {address} is not a public address")


def url_violation(url: str, rules: Egress) -> str | None:
    """Why the rules refuse this URL as written, or None. Without resolving names: an address written in the URL
    (in any numeric form) and `localhost` are checked as addresses, names against the lists (the worker checks what
    names resolve to)."""
    try:
        host = normalize_host(urllib.parse.urlsplit(url).hostname or "")
        check_host(host, rules)
        if _address(host) is not None:
            check_address(host, rules)
        elif host == "localhost" or host.endswith(".localhost"):
            check_address("127.0.0.1", rules)
    except (Blocked, ValueError) as error:
        return str(error)
    return None


def endpoint_key(url: str) -> str:
    """`scheme://host:port` of an endpoint URL, normalized, for comparing an endpoint with a configured list."""
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    host = normalize_host(parts.hostname or "")
    if ":" in host:  # an IPv6 address keeps its brackets, so the key still parses as a URL
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}:{port or _NO_PORT.get(parts.scheme, 0)}"


def s3_endpoint_address(key: str) -> str | None:
    """The address of an endpoint key (`endpoint_key`) whose host is written as an address, else None."""
    host = urllib.parse.urlsplit(key).hostname or ""
    return host if _address(host) is not None else None


@dataclass(frozen=True)
class NamespaceRules:
    """A namespace's annotations: its allowed and denied domains, and the entries that can never match."""

    allowed: tuple[str, ...]
    denied: tuple[str, ...]
    problems: tuple[str, ...]


def _entries(annotation: str, value: str | None, problems: list[str]) -> tuple[str, ...]:
    entries = []
    for raw in (value or "").split(","):
        if not raw.strip():
            continue
        problem = entry_problem(raw.strip())
        if problem is not None:
            problems.append(f"namespace annotation {annotation}: {problem}")
        else:
            entries.append(normalize_host(raw))
    return tuple(entries)


def namespace_rules(annotations: Mapping[str, str]) -> NamespaceRules | None:
    """The rules a namespace's annotations set, or None when it sets neither annotation."""
    if ALLOWED_ANNOTATION not in annotations and DENIED_ANNOTATION not in annotations:
        return None
    problems: list[str] = []
    allowed = _entries(ALLOWED_ANNOTATION, annotations.get(ALLOWED_ANNOTATION), problems)
    denied = _entries(DENIED_ANNOTATION, annotations.get(DENIED_ANNOTATION), problems)
    return NamespaceRules(allowed, denied, tuple(problems))


def tighten(rules: Egress, allowed: Iterable[str], denied: Iterable[str]) -> Egress:
    """The operator's rules narrowed by a namespace's: a host must pass both. Denied lists add up; allowed lists
    intersect (a domain on one list that falls under the other's, e.g. cdn.example.org under example.org)."""
    allowed = list(allowed)
    if allowed and rules.allowed_domains:
        both = {d for d in allowed if _in_domains(d, rules.allowed_domains)}
        both |= {d for d in rules.allowed_domains if _in_domains(d, allowed)}
        # Nothing in common: an allowed list no host can match (an empty list would mean "anything").
        allowed_domains = sorted(both) or ["nothing.invalid"]
    else:
        allowed_domains = list(allowed or rules.allowed_domains)
    return rules.model_copy(
        update={
            "allowed_domains": allowed_domains,
            "denied_domains": sorted({*rules.denied_domains, *denied}),
        }
    )


def first_violation(
    urls: Iterable[str],
    s3_endpoint: str | None,
    rules: Egress,
    private_endpoints: Iterable[str] = (),
    namespace_problems: Iterable[str] = (),
) -> tuple[str, str] | None:
    """The first destination of a download the rules refuse as written, as (URL, reason), or None.

    A namespace annotation entry that can never match refuses everything there (failing closed: the entry was meant
    to restrict something). The S3 endpoint passes the same rules as a URL, unless the operator lists it among the
    endpoints that may be private (an object store inside the cluster)."""
    urls, problems = list(urls), list(namespace_problems)
    if problems:
        return urls[0], f"blocked by egress rules: {problems[0]}"
    for url in urls:
        why = url_violation(url, rules)
        if why is not None:
            return url, why
    if s3_endpoint and endpoint_key(s3_endpoint) not in set(private_endpoints):
        why = url_violation(s3_endpoint, rules)
        if why is not None:
            return s3_endpoint, f"spec.target.s3.endpoint: {why}"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """The operator's egress rules and the namespaces that tighten them (kopf's index: namespace -> [rules])."""

    base: Egress
    namespaces: Mapping[str, Collection[NamespaceRules]]
    private_endpoints: tuple[str, ...] = ()

    def _rules(self, namespace: str) -> NamespaceRules | None:
        values = list(self.namespaces.get(namespace, ()))
        return values[0] if values else None

    def rules_for(self, namespace: str) -> Egress:
        """The rules a worker in this namespace runs under."""
        rules = self._rules(namespace)
        return tighten(self.base, rules.allowed, rules.denied) if rules is not None else self.base

    def blocked(self, namespace: str, urls: Iterable[str], s3_endpoint: str | None) -> tuple[str, str] | None:
        """The first destination refused as written (checked before any Job; the worker enforces the same rules on
        every request and redirect)."""
        rules = self._rules(namespace)
        problems = rules.problems if rules is not None else ()
        return first_violation(urls, s3_endpoint, self.rules_for(namespace), self.private_endpoints, problems)
