"""Which Host and Origin headers a local server answers: the web UI and `tunestudio serve` both
refuse a request that does not name them, so a web page cannot use them from the user's browser.

- DNS rebinding: a page on evil.example makes its own name resolve to 127.0.0.1; the browser then
  sends `Host: evil.example` to the local server, which refuses any name but its own.
- A drive-by request: any page can POST to http://127.0.0.1:PORT/ (a "simple" request needs no
  CORS preflight); the browser adds `Origin: https://page.example`, which is not the server's own.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for an address (or localhost) only this machine reaches: what a server may bind to
    without a password or key. Any other name may resolve to anything, so it counts as public."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: list[str] | None = None) -> set[str]:
    """The Host names a server answers to: loopback always, the address it listens on, and `extra`;
    on a wildcard address (0.0.0.0, ::) also this machine's own names."""
    names = {*LOOPBACK_NAMES, host.strip("[]").lower(), *(h.strip().strip("[]").lower() for h in extra or [] if h.strip())}
    if host in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        names.discard("")
    return names


def host_name(header: str) -> str:
    """The name in a Host header, without the port ("[::1]:7860" -> "::1")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str, allowed: set[str]) -> bool:
    name = host_name(header)
    if name in allowed:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_origin(origin: str, host_header: str) -> bool:
    """True when a browser's Origin header is the server itself (scheme://HOST[:port] naming what
    the request's Host header names). An absent Origin is no browser's cross-site request; "null"
    (a sandboxed frame, a file:// page) is no origin of ours."""
    if not origin:
        return True
    parts = urlsplit(origin.strip().lower())
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == host_header.strip().lower()
