"""Fetching a member's WeChat avatar for a poster: bounded in time and size, never an error.

This runs before the pure renderer; whatever goes wrong (timeout, 404, a huge or non-image body, an address
inside our network) gives None, and the poster uses the default avatar."""
from __future__ import annotations

import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

import requests

from posters.images import AVATAR_MAX_BYTES

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2.0


def _public_host(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_global for info in infos)


def fetch_avatar(url: str | None, *, timeout: float = TIMEOUT_SECONDS, max_bytes: int = AVATAR_MAX_BYTES,
                 allow_private: bool = False) -> bytes | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    # The URL is member-supplied data: never let it make us fetch from inside our own network.
    if not allow_private and not _public_host(parts.hostname):
        log.info("avatar host %s is not public; using the default avatar", parts.hostname)
        return None
    deadline = time.monotonic() + timeout
    try:
        with requests.get(url, timeout=(min(1.0, timeout), timeout), stream=True, allow_redirects=False) as resp:
            if resp.status_code != 200:
                return None
            if int(resp.headers.get("Content-Length") or 0) > max_bytes:
                return None
            body = bytearray()
            # read1 returns after one socket read, so the deadline is checked between reads: a server dripping
            # a byte at a time cannot hold us longer than the timeout plus one read.
            while chunk := resp.raw.read1(65536):
                body += chunk
                if len(body) > max_bytes or time.monotonic() > deadline:
                    return None
            return bytes(body)
    except (requests.RequestException, OSError, ValueError):
        return None
