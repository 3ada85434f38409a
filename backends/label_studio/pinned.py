"""Connect to the address that was checked. An image host is judged on the addresses its name
resolves to (image_hosts.check); if the connection resolved the name again, a DNS server
answering differently the second time (DNS rebinding) could send it to an address the check
refused. So a download runs `pinned(host, address)`, and the session's adapter connects to that
address while the URL, the Host header and TLS (SNI and the certificate's host name) keep the name."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import requests
from requests.adapters import HTTPAdapter

_pin: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("openautoglm_pin", default=None)


@contextlib.contextmanager
def pinned(host: str, address: str | None) -> Iterator[None]:
    """Within this block, connections to `host` go to `address` (None: resolved as usual)."""
    token = _pin.set((host.lower(), address) if address else None)
    try:
        yield
    finally:
        _pin.reset(token)


class PinnedAdapter(HTTPAdapter):
    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pin = _pin.get()
        proxy = requests.utils.select_proxy(request.url, proxies) if proxies else None
        if pin is None or proxy:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        if host_params["host"].lower() != pin[0]:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        if host_params["scheme"] == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": pin[0], "assert_hostname": pin[0]}
        return self.poolmanager.connection_from_host(**{**host_params, "host": pin[1]}, pool_kwargs=pool_kwargs)


def mount(session: requests.Session) -> None:
    adapter = PinnedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
