"""File-layer helpers shared by the format modules: atomic output and image sizes."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from PIL import Image, ImageOps, UnidentifiedImageError

from .types import AnnotationError

# EXIF orientations 5-8 rotate by 90 degrees, so the displayed width and height swap.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION_TAG = 0x0112


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread, for a moment)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w", durable: bool = False) -> Iterator:
    """Write to a temp file beside `path` and rename it into place only if the block succeeds.
    `durable`: the content and the rename are on disk when this returns (fsync), so a power loss
    leaves the old file or the new one, never an empty one (for state a server relies on)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a written file follows the umask
        os.replace(tmp, path)
        if durable:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Build a directory under a temp name beside `path`; it appears under `path` only when complete."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise AnnotationError("output already exists and is not an empty directory", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def displayed_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image as displayed, i.e. after its EXIF orientation. Reads the header only."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except (OSError, UnidentifiedImageError) as error:
        raise AnnotationError(f"cannot read image: {error}", str(path)) from None
    return (height, width) if orientation in _TRANSPOSING_ORIENTATIONS else (width, height)


# OPENAUTOGLM_MAX_PIXELS' default: a 100-megapixel aerial or medium-format photo decodes (300 MB as
# RGB); a 13000x13000 PNG of 170 KB, which would take 0.5-1.6 GB to decode, is refused from its header
DEFAULT_MAX_PIXELS = 100_000_000


class TooManyPixels(AnnotationError):
    """An image over the pixel budget, refused from its header before any pixel is decoded."""


def load_displayed(path: Path | io.BytesIO, where: str | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image's pixels as displayed (EXIF orientation applied), RGB. A file or bytes that do
    not decode, or hold more than `max_pixels`, raise AnnotationError naming `where` (the path by
    default)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise TooManyPixels(f"{width}x{height} is {width * height:,} pixels, over the limit of "
                                    f"{max_pixels:,} (OPENAUTOGLM_MAX_PIXELS)", where or str(path))
            image.load()
            # exif_transpose and convert each return a full copy even when there is nothing to do,
            # which doubled the cost of a 640x480 JPEG (3.5 -> 7 ms), so each runs only when needed
            if image.getexif().get(_EXIF_ORIENTATION_TAG, 1) != 1:
                image = ImageOps.exif_transpose(image)
            return image if image.mode == "RGB" else image.convert("RGB")
    except TooManyPixels:
        raise
    except Exception as error:  # noqa: BLE001 - libraries that patch Image.open (ultralytics) raise other types
        raise AnnotationError(f"not a readable image ({type(error).__name__}: {error})", where or str(path)) from None


def decode_image(data: bytes, where: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Image bytes (a download, a base64 payload) as displayed, RGB."""
    return load_displayed(io.BytesIO(data), where, max_pixels)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def link_or_copy(source: Path, target: Path) -> None:
    """An image placed in an output folder: a hard link where the file system allows (no copy of a
    large dataset), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def relative_name(file_name: str) -> PurePosixPath:
    """Where an image's own files go inside an output folder: its name without a URI scheme or a
    leading slash (s3://bucket/a/b.jpg -> bucket/a/b.jpg), so nothing is written outside it."""
    return PurePosixPath(file_name.split("://")[-1].lstrip("/"))


def find_image(directory: Path, stem: str) -> Path | None:
    """The image file named `stem` with any usual suffix, or None."""
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None
