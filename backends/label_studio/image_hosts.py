"""Which hosts task images may be fetched from.

Whoever can edit a project's task data chooses the URLs the backend fetches. Link-local and cloud
metadata addresses are refused always, judged on the addresses the name resolves to (so a DNS name
pointing there is refused too) and again on every redirect hop; OPENAUTOGLM_IMAGE_HOSTS narrows
the rest to an allow-list of host patterns.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from urllib.parse import urlsplit

# instance metadata services that are not link-local (AWS IPv6, Alibaba Cloud)
METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
METADATA_NAMES = {"metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}


class ImageHostRefused(Exception):
    """An image URL the policy does not allow; the message names the URL and the reason."""


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageHostRefused(f"{url}: only http and https image URLs are fetched")
    return parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)


def allowed_by_patterns(url: str, patterns: list[str]) -> bool:
    """A pattern matches the host name (`*.example.com`, `10.0.0.*`) or `host:port`."""
    host, port = host_and_port(url)
    return any(fnmatch.fnmatchcase(f"{host}:{port}" if ":" in pattern else host, pattern.lower())
               for pattern in patterns)


def check(url: str, patterns: list[str], resolve: bool = True) -> list[str]:
    """Raise ImageHostRefused unless `url` may be fetched; the addresses judged, in the resolver's
    order (the connection must go to one of them: pinned.py). `resolve=False` where a proxy makes
    the connection (the name may resolve only there): then only an address literal or a metadata
    name is judged, and the proxy's own policy covers the rest."""
    host, port = host_and_port(url)
    if patterns and not allowed_by_patterns(url, patterns):
        raise ImageHostRefused(f"{url}: host {host} is not in OPENAUTOGLM_IMAGE_HOSTS")
    if host in METADATA_NAMES:
        raise ImageHostRefused(f"{url}: {host} is a cloud metadata service; image URLs there are never fetched")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return []
        try:
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0])
                                           for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)))
        except socket.gaierror as error:
            raise ImageHostRefused(f"{url}: cannot resolve {host}: {error}") from None
    for ip in addresses:
        mapped = getattr(ip, "ipv4_mapped", None)
        if ip.is_link_local or ip in METADATA_ADDRESSES or (mapped is not None and mapped.is_link_local):
            raise ImageHostRefused(f"{url}: {host} resolves to {ip}, a link-local or cloud metadata address; "
                                   "image URLs there are never fetched")
    return [str(ip) for ip in addresses]
