"""Warp targets become one gRPC target string (no sockets: addresses only)."""

from __future__ import annotations

import pytest

from fontus.remote._channel import normalise_target


def test_one_address_is_kept_as_written() -> None:
    assert normalise_target("10.0.0.7:50051") == "10.0.0.7:50051"
    assert normalise_target("dns:///nodes.default.svc:50051") == "dns:///nodes.default.svc:50051"


def test_a_list_of_replicas_becomes_a_balanced_ipv4_target() -> None:
    expected = "ipv4:127.0.0.1:1,10.0.0.2:2"
    assert normalise_target(["localhost:1", "10.0.0.2:2"]) == expected
    assert normalise_target("localhost:1, 10.0.0.2:2") == expected


def test_a_list_cannot_mix_in_resolver_schemes() -> None:
    with pytest.raises(ValueError, match="plain host:port entries"):
        normalise_target(["dns:///a:1", "127.0.0.1:2"])


def test_an_empty_target_says_what_to_give() -> None:
    with pytest.raises(ValueError, match="give host:port, a list of them, or dns:///name:port"):
        normalise_target([])
