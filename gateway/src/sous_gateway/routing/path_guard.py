"""Paths the gateway refuses to route: dot segments and encoded separators.

The gateway authorizes the decoded path and forwards the raw one. Where the two can mean different
routes — `/a/executions/..` is authorized as one route, then normalized by an HTTP client or a
server into another; `%2f` is one segment to the router and two to a server that decodes first —
a request could be checked against one service's rule and served by another. No Sous route has such
a segment, so they are refused outright with 400.
"""

from __future__ import annotations

from urllib.parse import unquote

from sous_service.errors import ApiError

_ENCODED_SEPARATORS = (b"%2f", b"%5c")


def check_path(raw_path: bytes, path: str) -> None:
    lowered = raw_path.lower()
    if any(separator in lowered for separator in _ENCODED_SEPARATORS) or b"\\" in raw_path or "\\" in path:
        raise ApiError(400, "invalid_path", "encoded slashes and backslashes are not allowed in paths")
    raw_segments = raw_path.decode("latin-1").split("/")
    # Decoding twice catches %252e-style double encoding that a lenient upstream might unwrap again.
    decoded = {unquote(unquote(segment)) for segment in raw_segments}
    if any("/" in segment or "\\" in segment for segment in decoded):
        raise ApiError(400, "invalid_path", "encoded slashes and backslashes are not allowed in paths")
    decoded |= set(path.split("/"))
    if "." in decoded or ".." in decoded:
        raise ApiError(400, "invalid_path", "'.' and '..' path segments are not allowed")
