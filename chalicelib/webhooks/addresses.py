"""Where a webhook may point. Outside the local stage: https only, on public hosts. The host is
resolved again at every delivery and each address checked, and the connection goes to the
address that was checked (a name that later resolves to 10.0.0.1 or 169.254.169.254 — DNS
rebinding — reaches nothing inside the network)."""
from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

from ..core.config import settings


class NotAllowed(Exception):
    pass


# Prefixes that translate to IPv4 (NAT64, the old IPv4-compatible form): `ipaddress` calls them
# global, yet behind a NAT64 gateway they reach the inside network.
TRANSLATED = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96"))


def local_stage() -> bool:
    """Only the local runtime may send to private addresses. Inside Lambda the checks always
    hold, even if a stage forgot to set STAGE (which defaults to local)."""
    return settings().stage == "local" and not os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


def public(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if address.version == 6:
        if any(address in net for net in TRANSLATED):
            return False
        embedded = address.ipv4_mapped or (address.sixtofour if address.sixtofour else None)
        if embedded is not None and not embedded.is_global:
            return False
    return address.is_global


def check_url(url: str) -> None:
    """At registration: the URL's form (the addresses are checked when delivering)."""
    parts = urlsplit(url)
    allowed = ("http", "https") if local_stage() else ("https",)
    if parts.scheme not in allowed:
        raise NotAllowed(f"the URL must use {' or '.join(allowed)}")
    if not parts.hostname:
        raise NotAllowed("the URL needs a host")
    if parts.username or parts.password:
        raise NotAllowed("the URL must not carry credentials; deliveries are signed instead")
    if parts.fragment:
        raise NotAllowed("the URL must not have a fragment")
    if not url.isascii():
        raise NotAllowed("the URL must be ASCII: encode the host with IDNA (xn--…) and the path with %-escapes")
    try:
        parts.port
    except ValueError:
        raise NotAllowed("the URL's port is not a number from 1 to 65535") from None
    if local_stage():
        return
    if parts.hostname.lower() in ("localhost",) or parts.hostname.lower().endswith((".localhost", ".local",
                                                                                    ".internal")):
        raise NotAllowed("the host must be public")
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return
    if not public(parts.hostname):
        raise NotAllowed("the host must be a public address")


def resolve(host: str, port: int) -> str:
    """One address of `host` to connect to; every address it has must be public (outside local)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NotAllowed(f"cannot resolve {host}: {exc}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise NotAllowed(f"{host} has no address")
    if not local_stage():
        for text in addresses:
            if not public(text):
                raise NotAllowed(f"{host} resolves to a non-public address")
    return addresses[0]
