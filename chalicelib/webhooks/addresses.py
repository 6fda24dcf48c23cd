"""Where a webhook may point. Outside the local stage: https only, on public hosts. The host is
resolved again at every delivery and each address checked, and the connection goes to the
address that was checked (a name that later resolves to 10.0.0.1 or 169.254.169.254 — DNS
rebinding — reaches nothing inside the network)."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ..core.config import settings


class NotAllowed(Exception):
    pass


def local_stage() -> bool:
    return settings().stage == "local"


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
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return
    if not address.is_global:
        raise NotAllowed("the host must be a public address")


def resolve(host: str, port: int) -> str:
    """One address of `host` to connect to; every address it has must be public (outside local)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NotAllowed(f"cannot resolve {host}: {exc.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise NotAllowed(f"{host} has no address")
    if not local_stage():
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not address.is_global:
                raise NotAllowed(f"{host} resolves to a non-public address")
    return addresses[0]
