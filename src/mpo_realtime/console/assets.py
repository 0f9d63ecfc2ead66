"""The console's static files: ours from this package, the chart library from ``plotly``.

Each file is read once and kept in memory with its ETag and a gzip copy, so that an
answer is a dictionary look-up (the 4.8 MB chart library would cost the event loop a
tenth of a second to compress per request). The chart library is read on its first
request, not at start-up: most processes never serve a page.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHART_LIBRARY", "Asset", "Assets"]

STATIC_DIR = Path(__file__).with_name("static")
#: the name the page loads the chart library under
CHART_LIBRARY = "plotly.min.js"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: our own files change with the code: the browser asks again each time (a 304 if equal)
_OWN_CACHE = "no-cache"
#: the chart library changes only with the package version
_LIBRARY_CACHE = "public, max-age=86400"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str
    cache_control: str

    @classmethod
    def of(cls, body: bytes, *, media_type: str, cache_control: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, 6, mtime=0), media_type, digest, cache_control)


def chart_library_path() -> Path:
    """``plotly.min.js`` inside the installed ``plotly`` package (found without importing
    the package, which would load its Python dependencies for nothing)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plotly package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / CHART_LIBRARY


class Assets:
    """Name → :class:`Asset`; names are flat (no directories), so no path escapes."""

    def __init__(self, static_dir: Path = STATIC_DIR) -> None:
        self._own = {
            path.name: Asset.of(
                path.read_bytes(), media_type=_MEDIA_TYPES[path.suffix], cache_control=_OWN_CACHE
            )
            for path in sorted(static_dir.iterdir())
            if path.suffix in _MEDIA_TYPES
        }
        self._library: Asset | None = None
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return [*self._own, CHART_LIBRARY]

    def get(self, name: str) -> Asset | None:
        """The asset, or None. The chart library's first read blocks: call in a thread."""
        if name != CHART_LIBRARY:
            return self._own.get(name)
        with self._lock:
            if self._library is None:
                body = chart_library_path().read_bytes()
                self._library = Asset.of(
                    body, media_type=_MEDIA_TYPES[".js"], cache_control=_LIBRARY_CACHE
                )
            return self._library

    def loaded(self, name: str) -> bool:
        """Whether :meth:`get` answers without I/O."""
        return name != CHART_LIBRARY or self._library is not None
