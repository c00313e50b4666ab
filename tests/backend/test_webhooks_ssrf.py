"""The SSRF guard: which addresses and URLs may receive webhooks."""

import pytest

from crm_backend.webhooks import ssrf


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.10",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1", "fe80::1%eth0",
        # IPv4-mapped addresses are refused whatever they map to (never needed in a URL).
        "::ffff:93.184.216.34",
    ],
)
def test_non_public_addresses_are_not_public(address):
    assert not ssrf.is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1", "2a00:1450:4001::200e"])
def test_public_addresses_are_public(address):
    assert ssrf.is_public(address)


def resolver(*addresses):
    return lambda host, port: list(addresses)


def test_every_resolved_address_must_be_public():
    with pytest.raises(ssrf.UnsafeURL, match="10.1.1.1"):
        ssrf.check("https://hooks.example.com/x", allow_private=False, resolver=resolver("93.184.216.34", "10.1.1.1"))


def test_a_checked_target_keeps_the_addresses_host_header_and_path():
    target = ssrf.check("https://Hooks.Example.com:8443/in/crm?tenant=7", allow_private=False, resolver=resolver("93.184.216.34"))

    assert target == ssrf.Target("https", "hooks.example.com", 8443, "/in/crm?tenant=7", "hooks.example.com:8443", ("93.184.216.34",))


def test_ipv6_literals_get_brackets_in_the_host_header():
    target = ssrf.check("http://[2606:2800:220:1::1]/x", allow_private=False)

    assert target.host_header == "[2606:2800:220:1::1]" and target.addresses == ("2606:2800:220:1::1",)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://example.com/", "only http"),
        ("javascript:alert(1)", "only http"),
        ("//example.com/x", "only http"),
        ("http://", "no host"),
        ("http://a:b@example.com/", "credentials"),
        ("http://example.com:0/", "port 0"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_malformed_or_non_http_urls_are_refused_even_when_private_targets_are_allowed(url, reason):
    with pytest.raises(ssrf.UnsafeURL, match=reason):
        ssrf.check(url, allow_private=True, resolver=resolver("127.0.0.1"))


def test_private_targets_pass_when_allowed():
    assert ssrf.check("http://localhost:8080/x", allow_private=True, resolver=resolver("127.0.0.1")).port == 8080


def test_resolution_failures_are_refusals():
    def failing(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(ssrf.UnsafeURL, match="cannot be resolved"):
        ssrf.check("https://nowhere.invalid/", allow_private=True, resolver=failing)
