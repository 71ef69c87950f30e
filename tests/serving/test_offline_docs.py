"""``/docs`` renders with no network: Swagger UI's assets come from a package, not a CDN.

Checked in a real headless browser, Debian's ``chromium`` (``make test`` installs it), with
every host name but the server's made unresolvable, so a page that needed a CDN would stay blank.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

from http_helpers import DOCUMENTED_PATHS, ServerThread, hand_made_folder
from sigerec.serving.app import create_app
from sigerec.serving.service import RecommendationService

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # No name resolves but the loopback address the server is on: nothing can come from a CDN.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",
]


@pytest.fixture(scope="module")
def server_url():
    with ServerThread(create_app(RecommendationService(hand_made_folder(), index="exact"))) as url:
        yield url


def rendered_dom(url: str, profile) -> str:
    command = [CHROMIUM, *OFFLINE_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_docs_pages_load_nothing_from_outside_the_server(server_url):
    for page in ("/docs", "/redoc"):
        html = httpx.get(server_url + page).text
        assert not re.search(r"""(src|href)=["']https?://""", html), html
        for asset in re.findall(r"""(?:src|href)=["'](/[^"']+)""", html):
            assert httpx.get(server_url + asset).status_code == 200, asset


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_swagger_ui_renders_every_operation_in_a_headless_browser_without_network(server_url, tmp_path):
    dom = rendered_dom(server_url + "/docs", tmp_path / "profile")
    assert "Failed to load API definition" not in dom
    operations = set(re.findall(r'data-path="([^"]+)"', dom))
    assert operations == DOCUMENTED_PATHS, dom[:3000]
