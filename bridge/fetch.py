"""Fetching frames given as ``{"url": ...}``, only from hosts the configuration allows.

A URL in a frame is attacker-controlled input that makes the bridge open a connection, so the
host must be named in ``frames.url_allowed_hosts`` (no arbitrary addresses, no redirects away),
the body is read with a byte cap, and the whole fetch has a timeout.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from bridge.errors import FrameError


def check_url(url: str, allowed_hosts: tuple[str, ...]) -> None:
    """Refuse URLs that are not http(s) or whose host is not allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FrameError("url_not_allowed", f"only http and https URLs are fetched, not {url!r}")
    host = (parts.hostname or "").lower()
    if not host or host not in allowed_hosts:
        hint = "it is empty" if not allowed_hosts else "allowed: " + ", ".join(allowed_hosts)
        raise FrameError(
            "url_not_allowed", f"host {host!r} is not in frames.url_allowed_hosts ({hint})"
        )


async def fetch_url(
    session: aiohttp.ClientSession,
    url: str,
    allowed_hosts: tuple[str, ...],
    max_bytes: int,
    time_limit: float,
) -> bytes:
    """Download a frame; ``FrameError`` with ``url_not_allowed`` or ``url_fetch_failed``."""
    check_url(url, allowed_hosts)
    try:
        async with asyncio.timeout(time_limit):
            async with session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise FrameError("url_fetch_failed", f"{url} answered HTTP {response.status}")
                if (response.content_length or 0) > max_bytes:
                    raise FrameError(
                        "url_fetch_failed",
                        f"{url} is {response.content_length} bytes, over the limit of {max_bytes}",
                    )
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise FrameError(
                            "url_fetch_failed", f"{url} sent more than {max_bytes} bytes"
                        )
                return bytes(body)
    except TimeoutError as err:
        raise FrameError("url_fetch_failed", f"{url} did not answer within {time_limit} s") from err
    except aiohttp.ClientError as err:
        raise FrameError("url_fetch_failed", f"{url} could not be fetched ({err})") from err
