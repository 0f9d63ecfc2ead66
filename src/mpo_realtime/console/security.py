"""The headers every console answer carries: a strict Content-Security-Policy and friends.

No inline script and no inline style attribute is allowed. Two style hashes are: the
chart library creates empty ``<style>`` elements and fills them through the CSSOM (the
hash of the empty string lets exactly those through), and at load time it injects the
stylesheet of its map traces, which the console does not draw but which would
otherwise be reported as a violation on every page load. The browser test fails,
naming the new hash, if a plotly release changes that stylesheet.
"""

from __future__ import annotations

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS"]

#: sha256 of the empty string: plotly's empty ``<style>`` elements, filled by insertRule
EMPTY_STYLE_HASH = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
#: sha256 of the map (maplibre) stylesheet that plotly.js 4.1 injects when it loads
PLOTLY_MAP_STYLE_HASH = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "worker-src 'self'",
        "connect-src 'self'",
        f"style-src 'self' {EMPTY_STYLE_HASH} {PLOTLY_MAP_STYLE_HASH}",
        # the chart's "download as PNG" draws through data: and blob: images
        "img-src 'self' data: blob:",
        "base-uri 'none'",
        # the forms are sent by script only: a native submit (script failed to load)
        # must never put a client secret into a URL
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
