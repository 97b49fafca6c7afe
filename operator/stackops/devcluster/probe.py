"""Plain HTTP(S) GETs against loopback endpoints, for readiness checks.

urllib with an empty ProxyHandler: an HTTPS_PROXY in the environment must never route a
request for 127.0.0.1 elsewhere.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def get(url: str, *, token: str | None = None, cafile: Path | None = None, timeout: float = 3.0) -> int | None:
    """The HTTP status of GET `url`, or None if nothing answered (refused, reset, TLS not ready).

    HTTPS is verified against `cafile`; no `cafile` on an https URL means "not verifiable yet"
    (the apiserver writes its self-signed certificate a moment after it starts).
    """
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https:"):
        if cafile is None or not cafile.is_file():
            return None
        try:
            context = ssl.create_default_context(cafile=str(cafile))
        except (ssl.SSLError, OSError):
            return None  # certificate file still being written
        handlers.append(urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return None


def answers_ok(url: str, *, cafile: Path | None = None) -> Callable[[], bool]:
    """A readiness check: does GET `url` answer 200 now?"""
    return lambda: get(url, cafile=cafile) == 200
