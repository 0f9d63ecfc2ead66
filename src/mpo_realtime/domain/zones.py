"""The one time-zone database of the service: the ``tzdata`` package.

Three databases could decide a local time here: the host's ``/usr/share/zoneinfo``
(which Python's ``zoneinfo`` reads first), the query engine's own copy, and the
``tzdata`` package. They disagree (America/Vancouver stays on UTC-7 from 2026 in
the newer rules), so every zone of the service is built from the package alone:
validation of a request, the bucket boundaries handed to the engine, and the
offsets printed in export files. Upgrading the package (pinned in
``pyproject.toml``) upgrades the rules; :func:`tzdata_version` says which are in use.

Zones are read with ``ZoneInfo.from_file`` from the package's resources, so no
process-wide setting (``zoneinfo.reset_tzpath``, ``PYTHONTZPATH``) is touched.
"""

from __future__ import annotations

import functools
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzdata

__all__ = ["canonical_zone", "get_zone", "tzdata_version", "zone_names"]

#: listed by the package but not a place: "local time not configured" (offset 0, "-00")
_NOT_PLACES = frozenset({"Factory"})


def tzdata_version() -> str:
    """The IANA release of the rules in use, e.g. ``2026f``."""
    return str(tzdata.IANA_VERSION)


@functools.cache
def zone_names() -> frozenset[str]:
    """Every zone name the package knows, in IANA spelling (links such as ``US/Pacific`` too)."""
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in listing.splitlines() if line.strip()) - _NOT_PLACES


@functools.cache
def _by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in zone_names()}


def canonical_zone(name: str) -> str | None:
    """The IANA spelling of ``name`` (matched case-insensitively), or None if unknown."""
    return _by_folded_name().get(name.casefold())


@functools.cache
def get_zone(name: str) -> ZoneInfo:
    """The zone ``name`` (IANA spelling) built from the package's data.

    Raises ``ZoneInfoNotFoundError`` for a name the package does not list, so that a
    host-only name such as ``localtime`` can never slip in.
    """
    if name not in zone_names():
        raise ZoneInfoNotFoundError(f"no time zone named {name!r} in tzdata {tzdata_version()}")
    with resources.files("tzdata.zoneinfo").joinpath(name).open("rb") as data:
        return ZoneInfo.from_file(data, key=name)
