"""Fetching task images from Label Studio (or anywhere), safely.

Credentials (the Label Studio client's) go only to the Label Studio host: a task URL on another
host is fetched without them, and each redirect hop is judged again. Downloads are capped in size,
time-limited, EXIF-transposed, and cached on disk up to a size bound.
"""

from __future__ import annotations

import logging
from urllib.parse import urljoin, urlsplit

import requests
from PIL import Image

from openautoglm.converters import AnnotationError
from openautoglm.converters.files import decode_image

from ..settings import Settings
from . import image_hosts
from .client import LabelStudioClient, LabelStudioError, proxies_for
from .image_cache import DiskCache
from .local_files import LocalFileRefused, local_path, read_local
from .pinned import mount, pinned

log = logging.getLogger(__name__)


class ImageFetchError(Exception):
    """Why one task's image could not be had; the task gets an empty result, the batch goes on."""


class ImageFetcher:
    def __init__(self, settings: Settings, client: LabelStudioClient):
        self.settings, self.client = settings, client
        self.session = client.session  # one connection pool for images and API calls
        mount(self.session)  # connections to the address each image host was checked at
        self._warned_hosts: set[str] = set()
        self.cache = DiskCache(settings.cache_dir, settings.cache_max_bytes)

    def url_for(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        if url.startswith("/"):
            if self.settings.label_studio_url:
                return urljoin(self.settings.label_studio_url + "/", url.lstrip("/"))
            raise ImageFetchError(f"cannot fetch {url!r}: a relative URL needs LABEL_STUDIO_URL to be set")
        scheme = urlsplit(url).scheme
        if scheme:
            raise ImageFetchError(f"cannot fetch {url!r}: only http and https URLs are fetched, not {scheme}: "
                                  "(files and cloud storage reach the backend through Label Studio's storage)")
        raise ImageFetchError(f"cannot fetch {url!r}: not a URL (an http(s) URL or a path on Label Studio, "
                              "such as /data/upload/...)")

    def fetch(self, url: str) -> Image.Image:
        """The image as displayed (EXIF orientation applied), RGB."""
        data = self._local(url)
        if data is None:
            full = self.url_for(url)
            data = self.cache.get(full)
            if data is None:
                data = self._download(full)
                self.cache.put(full, data)
        try:
            return decode_image(data, url, self.settings.models.max_pixels)
        except AnnotationError as error:
            raise ImageFetchError(str(error)) from None

    def _local(self, url: str) -> bytes | None:
        """A local-files image read from the shared disk, where the backend sees Label Studio's
        document root; None for any other URL."""
        if self.settings.local_files_root is None:
            return None
        try:
            path = local_path(url, self.settings.local_files_root, self.settings.label_studio_url)
            return None if path is None else read_local(path, url, self.settings.max_image_bytes)
        except LocalFileRefused as error:
            raise ImageFetchError(str(error)) from None

    MAX_REDIRECTS = 5

    def _download(self, url: str) -> bytes:
        """Redirects are followed here, one hop at a time, so that each hop's host is checked and
        credentials go only to hops on the Label Studio host."""
        original = url
        try:
            for _ in range(self.MAX_REDIRECTS + 1):
                proxies = proxies_for(*urlsplit(url)[:2])
                try:
                    addresses = image_hosts.check(url, self.settings.image_hosts, resolve=not proxies)
                except image_hosts.ImageHostRefused as error:
                    raise ImageFetchError(str(error)) from None
                host, headers = urlsplit(url).hostname or "", {**self._credentials_for(url)}
                address = addresses[0] if addresses and addresses[0] != host else None
                if address:  # connected by address: the Host header still names the host
                    headers["Host"] = urlsplit(url).netloc.rpartition("@")[2]
                with pinned(host, address), \
                        self.session.get(url, headers=headers, stream=True, allow_redirects=False,
                                         timeout=self.settings.fetch_timeout_s, proxies=proxies) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    return self._body(url, response)
            raise ImageFetchError(f"{original}: more than {self.MAX_REDIRECTS} redirects")
        except requests.RequestException as error:
            raise ImageFetchError(f"{url}: {type(error).__name__}: {error}") from None

    def _credentials_for(self, url: str) -> dict[str, str]:
        if self.client.is_own_host(url):
            try:
                return self.client.auth_header()
            except LabelStudioError as error:
                raise ImageFetchError(str(error)) from None
        ours = urlsplit(self.settings.label_studio_url or "")
        theirs = urlsplit(url)
        if self.settings.label_studio_api_key and ours.hostname and (ours.port or 0) == (theirs.port or 0) \
                and theirs.netloc not in self._warned_hosts:
            # the usual cause of 401s: LABEL_STUDIO_URL says localhost, Label Studio's own
            # LABEL_STUDIO_HOST says 127.0.0.1 (or the other way round), and task URLs use the latter
            self._warned_hosts.add(theirs.netloc)
            log.warning("image host %s is not LABEL_STUDIO_URL's host %s; no credentials sent (set LABEL_STUDIO_URL "
                        "to the host Label Studio puts in task URLs, its LABEL_STUDIO_HOST)", theirs.netloc,
                        ours.netloc)
        return {}

    def _body(self, url: str, response: requests.Response) -> bytes:
        if response.status_code != 200:
            hint = ""
            if response.status_code in (401, 403) and not self.client.is_own_host(url):
                hint = (f" (no credentials sent: host {urlsplit(url).netloc} is not LABEL_STUDIO_URL's "
                        f"host {urlsplit(self.settings.label_studio_url or '').netloc or '(unset)'})")
            raise ImageFetchError(f"{url}: HTTP {response.status_code}{hint}")
        declared = int(response.headers.get("Content-Length") or 0)
        if declared > self.settings.max_image_bytes:
            raise ImageFetchError(f"{url}: {declared} bytes is over the {self.settings.max_image_bytes} byte cap")
        chunks, size = [], 0
        for chunk in response.iter_content(1 << 16):
            size += len(chunk)
            if size > self.settings.max_image_bytes:
                raise ImageFetchError(f"{url}: over the {self.settings.max_image_bytes} byte cap")
            chunks.append(chunk)
        return b"".join(chunks)
