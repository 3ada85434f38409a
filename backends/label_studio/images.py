"""Fetching task images from Label Studio (or anywhere), safely.

Credentials go only to the Label Studio host: a task URL on another host is fetched without them,
and requests drops the Authorization header itself when a redirect leaves the host. The API key
may be a legacy token (`Authorization: Token <key>`) or a personal access token, a JWT refresh
token exchanged at /api/token/refresh/ for a 5-minute access token sent as `Bearer`. Downloads are
capped in size, time-limited, EXIF-transposed, and cached on disk up to a size bound.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from PIL import Image

from openautoglm.converters import AnnotationError
from openautoglm.converters.files import decode_image

from ..settings import Settings
from . import image_hosts

log = logging.getLogger(__name__)


class ImageFetchError(Exception):
    """Why one task's image could not be had; the task gets an empty result, the batch goes on."""


class ImageFetcher:
    def __init__(self, settings: Settings, session: requests.Session | None = None):
        self.settings = settings
        self.session = session or requests.Session()
        # requests re-reads the proxy variables and ~/.netrc on every request (~0.6 ms of CPU per
        # image); proxies are looked up once per host instead, and the CA bundle variable once
        self.session.trust_env = False
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._access_token: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._warned_hosts: set[str] = set()
        self.cache = DiskCache(settings.cache_dir, settings.cache_max_bytes)

    def url_for(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        if url.startswith("/") and self.settings.label_studio_url:
            return urljoin(self.settings.label_studio_url + "/", url.lstrip("/"))
        raise ImageFetchError(f"cannot fetch {url!r}: a relative URL needs LABEL_STUDIO_URL to be set")

    def _same_host(self, url: str) -> bool:
        if not self.settings.label_studio_url:
            return False
        ours, theirs = urlsplit(self.settings.label_studio_url), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    def auth_header(self) -> dict[str, str]:
        key = self.settings.label_studio_api_key
        if not key:
            return {}
        if key.count(".") != 2:  # not a JWT: a legacy token
            return {"Authorization": f"Token {key}"}
        with self._lock:
            if self._access_token is None or self._access_token[1] < time.monotonic():
                refresh = urljoin(self.settings.label_studio_url + "/", "api/token/refresh/")
                response = self.session.post(refresh, json={"refresh": key}, timeout=self.settings.fetch_timeout_s,
                                             proxies=_proxies_for(*urlsplit(refresh)[:2]))
                if response.status_code != 200:
                    raise ImageFetchError(f"personal access token refresh failed: HTTP {response.status_code}")
                self._access_token = (response.json()["access"], time.monotonic() + 240)  # valid 5 minutes
            return {"Authorization": f"Bearer {self._access_token[0]}"}

    def fetch(self, url: str) -> Image.Image:
        """The image as displayed (EXIF orientation applied), RGB."""
        full = self.url_for(url)
        data = self.cache.get(full)
        if data is None:
            data = self._download(full)
            self.cache.put(full, data)
        try:
            return decode_image(data, url)
        except AnnotationError as error:
            raise ImageFetchError(str(error)) from None

    MAX_REDIRECTS = 5

    def _download(self, url: str) -> bytes:
        """Redirects are followed here, one hop at a time, so that each hop's host is checked and
        credentials go only to hops on the Label Studio host."""
        original = url
        try:
            for _ in range(self.MAX_REDIRECTS + 1):
                proxies = _proxies_for(*urlsplit(url)[:2])
                try:
                    image_hosts.check(url, self.settings.image_hosts, resolve=not proxies)
                except image_hosts.ImageHostRefused as error:
                    raise ImageFetchError(str(error)) from None
                with self.session.get(url, headers=self._credentials_for(url), stream=True, allow_redirects=False,
                                      timeout=self.settings.fetch_timeout_s, proxies=proxies) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    return self._body(url, response)
            raise ImageFetchError(f"{original}: more than {self.MAX_REDIRECTS} redirects")
        except requests.RequestException as error:
            raise ImageFetchError(f"{url}: {type(error).__name__}: {error}") from None

    def _credentials_for(self, url: str) -> dict[str, str]:
        if self._same_host(url):
            return self.auth_header()
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
            if response.status_code in (401, 403) and not self._same_host(url):
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


@functools.lru_cache(maxsize=64)
def _proxies_for(scheme: str, host: str) -> dict[str, str]:
    """The proxies the environment sets for this host (none where NO_PROXY lists it)."""
    return requests.utils.get_environ_proxies(f"{scheme}://{host}/")


class DiskCache:
    """Downloaded image bytes by URL, evicting the least recently used past `max_bytes`."""

    RESCAN_EVERY = 64  # puts; other worker processes write to the same folder

    def __init__(self, directory: Path, max_bytes: int):
        self.directory, self.max_bytes = Path(directory), max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None  # bytes on disk as this process last knew it
        self._puts = 0

    def _path(self, url: str) -> Path:
        return self.directory / hashlib.sha256(url.encode()).hexdigest()

    def get(self, url: str) -> bytes | None:
        path = self._path(url)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        os.utime(path)  # recently used
        return data

    def put(self, url: str, data: bytes) -> None:
        if self.max_bytes <= 0 or len(data) > self.max_bytes:
            return
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self._path(url).with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self._path(url))
            self._puts += 1
            # Scanning the folder costs a stat per file, so it happens on the first put, when this
            # process's running total passes the bound, or every RESCAN_EVERY puts to see other
            # workers' files. The scan counts the file just written, so only later puts add to it.
            if self._total is not None:
                self._total += len(data)
            if self._total is None or self._total > self.max_bytes or self._puts % self.RESCAN_EVERY == 0:
                self._total = self._evict()

    def _evict(self) -> int:
        """Remove least recently used files until under the bound; the bytes left."""
        entries = []
        for entry in os.scandir(self.directory):
            if not entry.name.endswith(".tmp"):
                try:
                    stat = entry.stat()
                except FileNotFoundError:  # evicted meanwhile by another worker
                    continue
                entries.append((stat.st_mtime, stat.st_size, entry.path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            Path(path).unlink(missing_ok=True)
            total -= size
        return total

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.directory.iterdir()) if self.directory.is_dir() else 0
