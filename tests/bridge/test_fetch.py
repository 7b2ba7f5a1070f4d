"""Frames given by URL: fetched from allowed hosts only, with a timeout and a size cap."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from bridge.errors import FrameError
from bridge.fetch import check_url, fetch_url


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/a.jpg",
        "file:///etc/passwd",
        "ftp://frigate.local/a.jpg",
        "http://169.254.169.254/",
    ],
)
def test_urls_to_hosts_not_allowed_are_refused(url: str) -> None:
    with pytest.raises(FrameError) as caught:
        check_url(url, ("frigate.local",))
    assert caught.value.code == "url_not_allowed"


def serve_and_fetch(path: str, max_bytes: int = 1000, timeout: float = 2.0) -> bytes:
    async def scenario() -> bytes:
        async def small(_: web.Request) -> web.Response:
            return web.Response(body=b"\xff\xd8 jpeg bytes")

        async def huge(_: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            await response.prepare(_)
            for _i in range(100):
                await response.write(b"x" * 100)
            return response

        async def slow(_: web.Request) -> web.Response:
            await asyncio.sleep(5)
            return web.Response(body=b"late")

        async def redirect(_: web.Request) -> web.Response:
            raise web.HTTPFound("http://evil.example/")

        app = web.Application()
        app.add_routes(
            [
                web.get("/small", small),
                web.get("/huge", huge),
                web.get("/slow", slow),
                web.get("/redirect", redirect),
            ]
        )
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                return await fetch_url(
                    session, f"http://127.0.0.1:{port}{path}", ("127.0.0.1",), max_bytes, timeout
                )
        finally:
            await runner.cleanup()

    return asyncio.run(scenario())


def test_an_allowed_host_is_fetched() -> None:
    assert serve_and_fetch("/small") == b"\xff\xd8 jpeg bytes"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/huge", "more than 1000 bytes"),
        ("/slow", "did not answer"),
        ("/redirect", "HTTP 302"),
        ("/missing", "HTTP 404"),
    ],
)
def test_huge_slow_redirected_or_missing_bodies_fail_clearly(path: str, words: str) -> None:
    with pytest.raises(FrameError) as caught:
        serve_and_fetch(path, timeout=0.5)
    assert caught.value.code == "url_fetch_failed"
    assert words in caught.value.detail
