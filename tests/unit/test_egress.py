"""Egress rules: host lists and address classes."""

from __future__ import annotations

import pytest

from gallery_operator.config import load_settings
from gallery_operator.egress import (
    ALLOWED_ANNOTATION,
    DENIED_ANNOTATION,
    Blocked,
    check_address,
    check_host,
    endpoint_key,
    entry_problem,
    first_violation,
    namespace_rules,
    normalize_host,
    tighten,
    url_violation,
)
from gallery_operator.workerconfig import Egress


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "0.0.0.0",
    ],
)
def test_non_public_addresses_are_blocked(address: str) -> None:
    with pytest.raises(Blocked, match="not a public address"):
        check_address(address, Egress())
    check_address(address, Egress(allow_private_networks=True))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    check_address(address, Egress())


def test_domain_lists_cover_subdomains() -> None:
    rules = Egress(allowed_domains=["example.org"], denied_domains=["bad.example.org"])
    check_host("example.org", rules)
    check_host("cdn.example.org", rules)
    with pytest.raises(Blocked, match="denied list"):
        check_host("x.bad.example.org", rules)
    with pytest.raises(Blocked, match="not on the allowed list"):
        check_host("notexample.org", rules)
    with pytest.raises(Blocked, match="not on the allowed list"):
        check_host("example.org.evil.net", rules)
    check_host("anything.net", Egress())


@pytest.mark.parametrize(
    ("url", "rules", "refused"),
    [
        ("https://example.org/a", Egress(allowed_domains=["example.org"]), None),
        ("https://cdn.example.org/a", Egress(allowed_domains=["example.org"]), None),
        ("https://other.net/a", Egress(allowed_domains=["example.org"]), "not on the allowed list"),
        ("https://bad.example.org/a", Egress(denied_domains=["bad.example.org"]), "on the denied list"),
        ("http://10.0.0.5:8080/x", Egress(), "not a public address"),
        ("http://[::1]/x", Egress(), "not a public address"),
        ("http://localhost:8080/x", Egress(), "not a public address"),
        ("http://api.localhost/x", Egress(), "not a public address"),
        ("http://localhost:8080/x", Egress(allow_private_networks=True), None),
        ("http://93.184.216.34/x", Egress(), None),
        ("https://example.org./a", Egress(denied_domains=["example.org"]), "on the denied list"),
        # Every numeric IPv4 spelling a resolver accepts is the address it spells.
        ("http://2130706433/", Egress(), "127.0.0.1 is not a public address"),
        ("http://0x7f.1/", Egress(), "127.0.0.1 is not a public address"),
        ("http://127.1/", Egress(), "127.0.0.1 is not a public address"),
        ("http://0177.0.0.1/", Egress(), "127.0.0.1 is not a public address"),
        ("http://0xa9.0xfe.0xa9.0xfe/latest", Egress(), "169.254.169.254 is not a public address"),
        ("http://2852039166/", Egress(), "169.254.169.254 is not a public address"),
        # IPv6 forms of IPv4 addresses are refused whole, even of a public one (a NetworkPolicy cannot look inside).
        ("http://[64:ff9b::7f00:1]/", Egress(), "not a public address"),
        ("http://[64:ff9b::a9fe:a9fe]/", Egress(), "not a public address"),
        ("http://[::127.0.0.1]/", Egress(), "not a public address"),
        ("http://[::ffff:169.254.169.254]/", Egress(), "not a public address"),
        ("http://[2002:a00:1::]/", Egress(), "not a public address"),
        ("http://[64:ff9b::5db8:d822]/", Egress(), "not a public address"),
        # Names are compared in one spelling: IDNA A-labels, lower case, no trailing dot.
        ("https://BÜCHER.example/x", Egress(denied_domains=["xn--bcher-kva.example"]), "on the denied list"),
        ("https://xn--bcher-kva.example/x", Egress(allowed_domains=["xn--bcher-kva.example"]), None),
        ("https://EXAMPLE.org/a", Egress(denied_domains=["example.org"]), "on the denied list"),
    ],
)
def test_urls_are_checked_as_written_at_admission(url: str, rules: Egress, refused: str | None) -> None:
    """The operator's check needs no DNS: names against the lists, written addresses and localhost as addresses."""
    violation = url_violation(url, rules)
    assert (violation is None) == (refused is None), violation
    if refused is not None:
        assert violation is not None and refused in violation


def test_namespace_annotations_only_tighten_the_rules() -> None:
    assert namespace_rules({"team": "a"}) is None
    ruled = namespace_rules({ALLOWED_ANNOTATION: " cdn.example.org, Other.NET. ,", DENIED_ANNOTATION: ""})
    assert ruled is not None and ruled.problems == ()
    allowed, denied = ruled.allowed, ruled.denied
    assert (allowed, denied) == (("cdn.example.org", "other.net"), ())
    operator = Egress(allowed_domains=["example.org"], denied_domains=["ads.example.org"])
    rules = tighten(operator, allowed, ["tracker.example.org"])
    assert rules.allowed_domains == ["cdn.example.org"]  # other.net is not allowed by the operator at all
    assert rules.denied_domains == ["ads.example.org", "tracker.example.org"]
    assert url_violation("https://img.cdn.example.org/a.jpg", rules) is None
    assert url_violation("https://www.example.org/a.jpg", rules) is not None
    assert url_violation("https://other.net/a.jpg", rules) is not None
    # Nothing in common: nothing is allowed (an empty list would have meant everything).
    assert url_violation("https://example.org/a", tighten(operator, ["elsewhere.net"], [])) is not None
    # An operator without an allowed list takes the namespace's; private networks stay as the operator says.
    open_rules = tighten(Egress(allow_private_networks=True), ["example.org"], [])
    assert open_rules.allowed_domains == ["example.org"] and open_rules.allow_private_networks


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("[::FFFF:7f00:1]", "::ffff:7f00:1"),
        ("Example.ORG.", "example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
        (b"cdn.example.org", "cdn.example.org"),
        ("4294967296", "4294967296"),  # beyond IPv4: a name that resolves to nothing
    ],
)
def test_hosts_have_one_spelling(host: str, normal: str) -> None:
    assert normalize_host(host) == normal


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("example.org", None),
        ("bücher.example", None),
        ("10.0.0.5", None),
        ("*.bad.org", "not a domain name"),
        ("https://bad.org", "not a domain name"),
        ("bad.org:443", "not a domain name"),
        ("bad org", "not a domain name"),
        ("a..b", "not a domain name"),
    ],
)
def test_list_entries_that_can_never_match_are_refused(entry: str, problem: str | None) -> None:
    found = entry_problem(entry)
    assert (found is None) == (problem is None), found
    if problem is not None:
        assert found is not None and problem in found


def test_operator_settings_refuse_entries_that_match_nothing() -> None:
    with pytest.raises(ValueError, match=r"GALLERY_OPERATOR_DENIED_DOMAINS.*'\*.bad.org' is not a domain name"):
        load_settings({"GALLERY_OPERATOR_DENIED_DOMAINS": "good.org,*.bad.org"})
    settings = load_settings({"GALLERY_OPERATOR_ALLOWED_DOMAINS": "Bücher.example, EXAMPLE.org."})
    assert settings.allowed_domains == ("xn--bcher-kva.example", "example.org")


def test_a_namespace_entry_that_matches_nothing_blocks_its_downloads() -> None:
    ruled = namespace_rules({DENIED_ANNOTATION: "*.ads.example, tracker.example"})
    assert ruled is not None and ruled.denied == ("tracker.example",)
    found = first_violation(["https://example.org/a"], None, Egress(), (), ruled.problems)
    assert found is not None and "'*.ads.example' is not a domain name" in found[1]


@pytest.mark.parametrize(
    ("endpoint", "private", "refused"),
    [
        ("http://169.254.169.254", (), "spec.target.s3.endpoint: blocked by egress rules: 169.254.169.254"),
        ("http://localhost:9000", (), "spec.target.s3.endpoint"),
        ("http://2130706433:9000", (), "127.0.0.1 is not a public address"),
        ("http://minio.storage.svc:9000", (), None),  # a name: the worker checks what it resolves to
        ("http://minio.storage.svc:9000", ("http://minio.storage.svc:9000",), None),
        ("http://10.0.0.7:9000", ("http://10.0.0.7:9000",), None),
        ("http://10.0.0.7:9001", ("http://10.0.0.7:9000",), "not a public address"),
        ("https://s3.example.net", (), "not on the allowed list"),
    ],
)
def test_the_s3_endpoint_passes_the_same_rules_as_a_url(
    endpoint: str, private: tuple[str, ...], refused: str | None
) -> None:
    rules = Egress(allowed_domains=["example.org"]) if "example.net" in endpoint else Egress()
    keys = [endpoint_key(e) for e in private]
    found = first_violation(["https://example.org/a"], endpoint, rules, keys)
    assert (found is None) == (refused is None), found
    if refused is not None and found is not None:
        assert found[0] == endpoint and refused in found[1]
