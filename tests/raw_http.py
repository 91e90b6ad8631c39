"""Raw HTTP on a socket, for attack tests that send what no HTTP client would (partial bodies, slow heads)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse


def raw_request(base: str, data: bytes, *, wait_s: float) -> tuple[bytes, float]:
    """Send ``data`` on a raw socket; what came back before the server closed (or ``wait_s``), and the seconds."""
    parsed = urlparse(base)
    start = time.perf_counter()
    with socket.create_connection((parsed.hostname, parsed.port), timeout=wait_s) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received, time.perf_counter() - start
