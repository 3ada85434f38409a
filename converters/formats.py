"""The format registry: one name per format, its reader and writer, and the options each takes."""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import coco, cvat, label_studio, labelme, readonly, voc, yolo
from .types import AnnotationError, Dataset


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[..., Dataset]
    write: Callable[..., None]
    output_is_directory: bool
    read_options: tuple[str, ...] = ()
    write_options: tuple[str, ...] = ()
    writable: bool = True


FORMATS = {
    "coco": Format("coco", coco.read, coco.write, False),
    "voc": Format("voc", voc.read, voc.write, True, read_options=("zero_based",)),
    "yolo": Format("yolo", yolo.read, yolo.write, True, read_options=("task",), write_options=("task", "save_conf")),
    "label_studio": Format("label_studio", label_studio.read, label_studio.write, False,
                           write_options=("image_url_root", "label_config")),
    "cvat": Format("cvat", cvat.read, cvat.write, False),
    "labelme": Format("labelme", labelme.read, labelme.write, True),
    "createml": Format("createml", readonly.read_createml, readonly.no_writer("createml"), False, writable=False),
    "sam": Format("sam", readonly.read_sam, readonly.no_writer("sam"), False, writable=False),
}
ALIASES = {"ls": "label_studio", "label-studio": "label_studio", "labelstudio": "label_studio",
           "pascal_voc": "voc", "cvat_images": "cvat", "ultralytics": "yolo",
           "x-anylabeling": "labelme", "x_anylabeling": "labelme", "segment-anything": "sam", "sa-1b": "sam"}


def spellings() -> str:
    """The accepted names, for messages: each format with its other spellings in brackets."""
    others = {name: [alias for alias, target in ALIASES.items() if target == name] for name in FORMATS}
    return ", ".join(f"{name} ({', '.join(others[name])})" if others[name] else name for name in FORMATS)


def get(name: str) -> Format:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise AnnotationError(f"unknown format {name!r}; choose one of {spellings()}")
    return FORMATS[key]


def load(path: Path, format_name: str, images_dir: Path | None = None, **options) -> Dataset:
    """Read a dataset. A non-empty input that reads as no images at all is an error, not an empty
    dataset: it is nearly always another layout or format (a Roboflow export, a CVAT video), and
    converting it would report success with nothing in it."""
    fmt = get(format_name)
    if not Path(path).exists():
        raise AnnotationError("no such file or folder", str(path))
    chosen = {k: v for k, v in options.items() if k in fmt.read_options and v is not None}
    with gc_paused():
        dataset = fmt.read(Path(path), images_dir, **chosen)
    if not dataset.items and _has_content(Path(path)):
        raise AnnotationError(f"{path}: read as {fmt.name} it holds no images, yet it is not empty; "
                              f"it is probably another layout or format than {fmt.name} reads")
    if not dataset.items:
        raise AnnotationError(f"{path}: holds nothing to read as {fmt.name} (empty)")
    return dataset


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a reader builds: a dataset is hundreds of thousands of
    small objects in no cycle, and the collector, started every few hundred allocations, walked
    them over and over (a third of reading 100,000 COCO boxes). Reference counting still frees."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _has_content(path: Path) -> bool:
    if path.is_file():
        return path.stat().st_size > 0
    return path.is_dir() and any(p.is_file() and p.stat().st_size > 0 for p in path.rglob("*"))


def writable(format_name: str) -> None:
    """Refuse a read-only output format before any work is done."""
    fmt = get(format_name)
    if not fmt.writable:
        raise readonly.read_only(fmt.name)


def save(dataset: Dataset, path: Path, format_name: str, images_dir: Path | None = None, **options) -> None:
    fmt = get(format_name)
    chosen = {k: v for k, v in options.items() if k in fmt.write_options and v is not None}
    fmt.write(dataset, Path(path), images_dir, **chosen)


def convert(source: Path, source_format: str, target: Path, target_format: str,
            images_dir: Path | None = None, **options) -> Dataset:
    """Read `source` and write it to `target`; nothing is written unless the whole read succeeds."""
    writable(target_format)
    dataset = load(source, source_format, images_dir, **options)
    save(dataset, target, target_format, images_dir, **options)
    return dataset
