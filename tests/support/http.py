"""Plain HTTP GETs for the tests of the bridge's status server (standard library only)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """What came back: status, body, content type."""

    status: int
    body: bytes
    content_type: str

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", errors="replace")


def get(url: str, accept: str = "*/*", timeout: float = 10) -> Reply:
    """GET ``url``; an HTTP error status is a reply like any other, not an exception."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read(), response.headers["Content-Type"])
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read(), err.headers["Content-Type"] or "")
