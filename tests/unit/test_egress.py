"""Egress rules: host lists and address classes."""

from __future__ import annotations

import pytest

from gallery_operator.egress import (
    ALLOWED_ANNOTATION,
    DENIED_ANNOTATION,
    Blocked,
    check_address,
    check_host,
    namespace_rules,
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
    allowed, denied = namespace_rules({ALLOWED_ANNOTATION: " cdn.example.org, other.net ,", DENIED_ANNOTATION: ""})  # type: ignore[misc]
    assert (allowed, denied) == (["cdn.example.org", "other.net"], [])
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
