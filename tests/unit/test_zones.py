"""The one time-zone database: names, spellings and rules come from the tzdata package only."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
import tzdata

from mpo_realtime.domain.zones import canonical_zone, get_zone, tzdata_version, zone_names


def test_zones_version_is_the_package_release() -> None:
    assert tzdata_version() == tzdata.IANA_VERSION
    assert tzdata_version() >= "2026f"  # the lower bound pinned in pyproject.toml


def test_zones_names_are_the_package_list_without_factory() -> None:
    listed = resources.files("tzdata").joinpath("zones").read_text().split()
    assert zone_names() == frozenset(listed) - {"Factory"}
    assert "localtime" not in zone_names()


@pytest.mark.parametrize(
    ("given", "spelled"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("europe/paris", "Europe/Paris"),
        ("AMERICA/VANCOUVER", "America/Vancouver"),
        ("utc", "UTC"),
        ("us/pacific", "US/Pacific"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ],
)
def test_zones_canonical_zone_matches_case_insensitively(given: str, spelled: str) -> None:
    assert canonical_zone(given) == spelled


@pytest.mark.parametrize(
    "name", ["localtime", "posixrules", "Factory", "Mars/Olympus_Mons", "", "../tzdata", "UTC "]
)
def test_zones_canonical_zone_refuses_what_the_package_does_not_list(name: str) -> None:
    assert canonical_zone(name) is None
    with pytest.raises(zoneinfo.ZoneInfoNotFoundError):
        get_zone(name)


def test_zones_rules_are_the_package_ones_not_the_hosts() -> None:
    # The 2026 rules keep Vancouver on UTC-7 all year; older databases (Debian's 2025b in
    # /usr/share/zoneinfo, which zoneinfo.ZoneInfo reads first) fall back to UTC-8.
    vancouver = get_zone("America/Vancouver")
    winter = datetime(2026, 12, 15, 12, tzinfo=UTC)
    assert winter.astimezone(vancouver).utcoffset() == timedelta(hours=-7)
    assert str(vancouver) == "America/Vancouver"
    assert get_zone("America/Vancouver") is vancouver  # built once


def test_zones_leave_the_process_wide_search_path_alone() -> None:
    before = zoneinfo.TZPATH
    get_zone("Asia/Kathmandu")
    assert zoneinfo.TZPATH == before


@pytest.mark.parametrize("name", sorted(zone_names()))
def test_zones_every_listed_name_loads(name: str) -> None:
    assert datetime(2026, 6, 1, tzinfo=UTC).astimezone(get_zone(name)).utcoffset() is not None
