"""Downloaded task images on disk, shared by the server's workers, bounded in size."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path


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
