"""Images Label Studio serves from its local files storage (`/data/local-files/?d=<path>`), read
from the disk where the backend sees the same folder (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, set
as for Label Studio) instead of downloaded through Label Studio: on one machine, Label Studio
serving every image of a large project takes as much CPU as predicting it.

Only files under that root are read: a path that climbs out of it (`..`, an absolute path) is
refused, as Label Studio refuses it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LOCAL_FILES_PATH = "/data/local-files/"


class LocalFileRefused(ValueError):
    """A local-files URL whose path is not a file under the document root."""


def local_path(url: str, root: Path, label_studio_url: str | None) -> Path | None:
    """The file a local-files URL names under `root`, or None when the URL is not one (another
    path, or another host than Label Studio's)."""
    parts = urlsplit(url)
    if parts.netloc and (not label_studio_url or parts.netloc != urlsplit(label_studio_url).netloc):
        return None
    if parts.path.rstrip("/") + "/" != LOCAL_FILES_PATH:
        return None
    (relative, *_) = parse_qs(parts.query).get("d") or [""]
    if not relative:
        raise LocalFileRefused(f"{url}: no file named (?d=...)")
    path = os.path.normpath(os.path.join(root, relative))
    if os.path.isabs(relative) or not path.startswith(os.path.normpath(root) + os.sep):
        raise LocalFileRefused(f"{url}: {relative!r} is not under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
    return Path(path)


def read_local(path: Path, url: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise LocalFileRefused(f"{url}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise LocalFileRefused(f"{url}: over the {max_bytes} byte cap")
    return data
