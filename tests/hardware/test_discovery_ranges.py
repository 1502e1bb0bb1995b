"""Address ranges for scans: parsing, exclusion, the loopback guard and the size limit."""

from __future__ import annotations

import pytest

from hardware.discovery import NetworkNotAllowedError, RangeError
from hardware.discovery.ranges import AddressRange, parse_range, plan_scan, subtract


def _hosts(*ranges: str, exclude: tuple[str, ...] = ()) -> list[str]:
    return list(plan_scan(ranges, exclude).hosts())


def test_cidr_leaves_out_network_and_broadcast() -> None:
    assert _hosts("127.0.1.0/30") == ["127.0.1.1", "127.0.1.2"]
    assert _hosts("127.0.1.0/31") == ["127.0.1.0", "127.0.1.1"]
    assert _hosts("127.0.1.7/32") == ["127.0.1.7"]
    assert plan_scan(["127.0.1.0/24"]).host_count == 254


def test_spans_and_single_addresses() -> None:
    assert _hosts("127.0.0.5-127.0.0.7") == ["127.0.0.5", "127.0.0.6", "127.0.0.7"]
    assert _hosts("127.0.0.5-6") == ["127.0.0.5", "127.0.0.6"]
    assert _hosts("127.0.0.9") == ["127.0.0.9"]
    assert str(parse_range("127.0.0.5-6")) == "127.0.0.5-127.0.0.6"


def test_overlaps_are_merged_and_excludes_cut() -> None:
    assert _hosts("127.0.0.1-4", "127.0.0.3-6", exclude=("127.0.0.2", "127.0.0.5-9")) == [
        "127.0.0.1",
        "127.0.0.3",
        "127.0.0.4",
    ]
    assert _hosts("127.0.0.1-4", exclude=("127.0.0.0/24",)) == []
    assert subtract([AddressRange(1, 10)], [AddressRange(3, 4), AddressRange(8, 20)]) == [
        AddressRange(1, 2),
        AddressRange(5, 7),
    ]


@pytest.mark.parametrize(
    "text", ["", "banana", "127.0.0.9-127.0.0.1", "::1", "127.0.0.0/33", "127.0.0.1-300", "1.2.3"]
)
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(RangeError):
        parse_range(text)


@pytest.mark.parametrize("text", ["192.168.1.0/24", "10.0.0.1", "126.255.255.255-127.0.0.1"])
def test_non_loopback_refused_without_allow_network(text: str) -> None:
    with pytest.raises(NetworkNotAllowedError):
        plan_scan([text])
    assert plan_scan([text], allow_network=True).host_count >= 1


def test_excluding_the_network_part_makes_it_allowed() -> None:
    plan = plan_scan(["126.255.255.255-127.0.0.1"], ["126.0.0.0/8"])
    assert list(plan.hosts()) == ["127.0.0.0", "127.0.0.1"]


def test_too_many_hosts_refused() -> None:
    with pytest.raises(RangeError, match="limit"):
        plan_scan(["127.0.0.0/8"])
    assert plan_scan(["127.0.0.0/16"], max_hosts=70_000).host_count == 65_534
