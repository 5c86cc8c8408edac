"""Avatar downloads are bounded: a slow, huge, missing or internal avatar gives None (the default avatar)."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.posters.avatars import fetch_avatar
from tests.posters.conftest import sample_avatar

AVATAR = sample_avatar(1)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/ok":
            self._send(AVATAR)
        elif self.path == "/slow-start":
            time.sleep(1.5)
            self._send(AVATAR)
        elif self.path == "/drip":  # sends a byte at a time, each within the read timeout: only a deadline stops it
            self.send_response(200)
            self.send_header("Content-Length", "60")
            self.end_headers()
            for _ in range(60):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
        elif self.path == "/huge":
            self._send(b"\xff" * (3 << 20))
        else:
            self.send_response(404)
            self.end_headers()

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def cdn():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False  # do not wait for a drip still sleeping
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_reachable_avatar_is_fetched(cdn):
    assert fetch_avatar(f"{cdn}/ok", allow_private=True) == AVATAR


@pytest.mark.parametrize("path", ["/slow-start", "/drip", "/huge", "/missing"])
def test_slow_huge_or_missing_avatars_give_none(cdn, path):
    assert fetch_avatar(f"{cdn}{path}", timeout=0.5, allow_private=True) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.jpg", "http://169.254.169.254/latest", "file:///etc/passwd",
                                 "ftp://example.com/a.jpg", "", None])
def test_internal_or_non_http_addresses_are_never_fetched(url):
    assert fetch_avatar(url) is None


def test_the_ok_avatar_is_refused_from_a_private_address_by_default(cdn):
    assert fetch_avatar(f"{cdn}/ok") is None
