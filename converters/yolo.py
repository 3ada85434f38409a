"""YOLO txt labels (ultralytics and darknet layouts).

Quirks kept: coordinates are normalised by the image size, which YOLO does not store (so reading
needs the images); detection lines are `class cx cy w h [conf]`, segmentation lines
`class x1 y1 ... xn yn [conf]`, oriented boxes `class x1 y1 x2 y2 x3 y3 x4 y4` (ambiguous with a
4-point polygon, so the task comes from `data.yaml`'s `task` key or the caller). Class names come
from `data.yaml` (`names` as a list or an {index: name} dict), `classes.txt`, or darknet's
`obj.names`/`obj.data`. Ultralytics can not mix boxes and polygons in one dataset, so a dataset
with polygons or masks is written as segmentation throughout. Pose lines (`kpt_shape` in data.yaml)
are a box and its keypoints, x y [visibility] each; a dataset with keypoints is written as pose.
"""

from __future__ import annotations

import functools
import os
from itertools import chain
from operator import attrgetter
from pathlib import Path, PurePosixPath

import yaml

from . import progress
from .files import (
    IMAGE_SUFFIXES,
    atomic_directory,
    atomic_file,
    displayed_size,
    find_image,
    link_or_copy,
    relative_name,
)
from .parallel import mask_count, ordered_map
from .skipping import element
from .subsets import split_name, subset_of
from .types import AnnotatedImage, AnnotationError, Category, Dataset, ImageRecord
from .yolo_lines import TASKS, choose_task, dump_labels, parse_labels

NAME = "yolo"


def _read_names(root: Path) -> tuple[list[str], dict]:
    """Class names and the data.yaml contents (empty if none) of a dataset directory."""
    config: dict = {}
    yaml_path = next((p for p in (root / "data.yaml", root / "dataset.yaml") if p.is_file()), None)
    if yaml_path is not None:
        try:
            config = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise AnnotationError(f"invalid YAML: {error}", str(yaml_path)) from None
        names = config.get("names")
        if isinstance(names, dict):
            ordered = sorted((int(k), str(v)) for k, v in names.items())
            if [k for k, _ in ordered] != list(range(len(ordered))):
                raise AnnotationError("names must be indexed 0..n-1", f"{yaml_path}: names")
            return [v for _, v in ordered], config
        if isinstance(names, list):
            return [str(n) for n in names], config
        raise AnnotationError("missing 'names' (a list or a dict)", str(yaml_path))
    for candidate in (root / "classes.txt", root / "obj.names"):
        if candidate.is_file():
            return [n.strip() for n in candidate.read_text(encoding="utf-8").splitlines() if n.strip()], config
    raise AnnotationError("no class names: expected data.yaml, classes.txt or obj.names", str(root))


def _label_files(root: Path, config: dict) -> list[tuple[Path, Path, str]]:
    """(labels directory, label file, subset) for every label file of the dataset."""
    splits = [(key, config[key]) for key in ("train", "val", "test") if isinstance(config.get(key), str)]
    base = root / config.get("path", ".") if config else root
    found: dict[Path, tuple[Path, Path, str]] = {}
    for subset, images_rel in splits:
        labels_dir = _labels_dir_for(_split_dir(base, images_rel, subset))
        for label in sorted(labels_dir.rglob("*.txt")) if labels_dir.is_dir() else []:
            found.setdefault(label, (labels_dir, label, subset))
    if not found:  # flat layouts: labels/ (Label Studio export, ours), darknet's obj_*_data/, or
        # Annotations/ beside Images/ (any capitalisation, as some labelling tools write them)
        flat = sorted(d for d in root.iterdir() if d.is_dir() and (d.name.lower() in ("labels", "annotations") or (
            d.name.startswith("obj_") and d.name.endswith("_data"))))
        for labels_dir in flat:
            for label in sorted(labels_dir.rglob("*.txt")) if labels_dir.is_dir() else []:
                found.setdefault(label, (labels_dir, label, "train"))
    return list(found.values())


# one split, several names: Roboflow writes `val: ../valid/images`, CVAT exports Validation
_VALIDATION_NAMES = ("val", "valid", "validation")


def _split_dir(base: Path, relative: str, subset: str) -> Path:
    """A split's images folder as ultralytics resolves it: relative to the dataset, and a `../`
    that leads out of it (Roboflow writes `train: ../train/images`) read from the dataset itself;
    a validation folder under another of its usual names. A declared split that is nowhere is an
    error, never skipped."""
    tried = []
    for candidate in (relative, *(relative[3:] for _ in [0] if relative.startswith("../"))):
        parts = Path(candidate).parts
        for name in (_VALIDATION_NAMES if any(p in _VALIDATION_NAMES for p in parts) else (None,)):
            folder = base / Path(*[name if name and p in _VALIDATION_NAMES else p for p in parts])
            if folder.exists() or _labels_dir_for(folder).exists():  # labels alone, as written without images
                return folder
            tried.append(str(folder))
    raise AnnotationError(f"data.yaml declares split {subset!r} at {relative!r}, but none of "
                          f"{', '.join(dict.fromkeys(tried))} exists", str(base))


def _labels_dir_for(images_dir: Path) -> Path:
    parts = list(images_dir.parts)
    if "images" in parts:
        index = len(parts) - 1 - parts[::-1].index("images")
        parts[index] = "labels"
    return Path(*parts)


def read(path: Path, images_dir: Path | None = None, task: str | None = None) -> Dataset:
    root = Path(path)
    if root.is_file():
        root = root.parent
    names, config = _read_names(root)
    kpt_shape = config.get("kpt_shape")
    task = task or config.get("task") or ("pose" if kpt_shape else "detect")
    items = []
    for labels_dir, label_path, subset in progress.track(_label_files(root, config), "reading YOLO"):
        with element(str(label_path)):
            relative = label_path.relative_to(labels_dir).with_suffix("")
            image_path = _find_image_for(labels_dir, relative, images_dir)
            if image_path is None:
                raise AnnotationError(
                    "no image found for this label file (YOLO needs the image for its size); pass --images DIR")
            width, height = displayed_size(image_path)
            file_name = str(PurePosixPath(*relative.parts[:-1], image_path.name))
            regions = parse_labels(label_path.read_text(encoding="utf-8"), names, width, height, task,
                                   tuple(kpt_shape) if kpt_shape else None)
            attributes = {"subset": subset} if subset != "train" else {}
            items.append(AnnotatedImage(ImageRecord(None, file_name, width, height, attributes), regions))
    return Dataset([Category(n) for n in names], items)


def _find_image_for(labels_dir: Path, relative: Path, images_dir: Path | None) -> Path | None:
    candidates = []
    if images_dir is not None:
        candidates += [Path(images_dir) / relative.parent, Path(images_dir)]
    candidates.append(_images_dir_for(labels_dir) / relative.parent)
    candidates += [d / relative.parent for d in sorted(labels_dir.parent.iterdir())
                   if d.is_dir() and d.name.lower() in ("images", "jpegimages")]  # Images/ beside Annotations/
    candidates.append(labels_dir / relative.parent)  # darknet keeps images beside their labels
    for directory in candidates:
        found = find_image(directory, relative.name)
        if found is not None:
            return found
    return None


def _images_dir_for(labels_dir: Path) -> Path:
    parts = list(labels_dir.parts)
    if "labels" in parts:
        parts[len(parts) - 1 - parts[::-1].index("labels")] = "images"
    return Path(*parts)


def write(dataset: Dataset, path: Path, images_dir: Path | None = None, task: str | None = None,
          save_conf: bool = False) -> None:
    """Ultralytics layout: data.yaml, labels/<subset>/<name>.txt and, given images_dir, images/<subset>/."""
    dataset = dataset.with_all_labels()
    task = task or choose_task(dataset)
    if task not in TASKS:
        raise AnnotationError(f"unknown YOLO task {task!r}; expected one of {', '.join(TASKS)}")
    index_by_label = {name: i for i, name in enumerate(dataset.label_names)}
    regions = chain.from_iterable(map(attrgetter("regions"), dataset.items))
    keypoints = max(map(len, map(attrgetter("keypoints"), regions)), default=0)
    # splits as ultralytics names them (a CVAT project's Train/Validation/Test -> train/val/test)
    subsets = sorted({split_name(subset_of(item)) for item in dataset.items} or {"train"})
    label_paths = _label_paths(dataset.items)
    with atomic_directory(Path(path)) as out:
        for folder in {os.path.dirname(label_path) for label_path in label_paths}:
            (out / folder).mkdir(parents=True, exist_ok=True)
        # the label files formatted (masks traced to outlines) and written over processes when masks are many
        write_one = functools.partial(_write_labels, out=out, label_paths=label_paths, index_by_label=index_by_label,
                                      task=task, keypoints=keypoints, save_conf=save_conf)
        written = ordered_map(write_one, dataset.items, mask_count(dataset.items))
        for item, _ in zip(progress.track(dataset.items, "writing YOLO"), written):
            if images_dir is not None:
                relative, original = relative_name(item.image.file_name), subset_of(item)
                source = Path(images_dir) / original / relative if original and (
                    Path(images_dir) / original / relative).is_file() else Path(images_dir) / relative
                _place_image(source, out / "images" / split_name(original) / relative)
        splits = {s: f"images/{s}" for s in subsets}
        splits.setdefault("val", splits.get("train", f"images/{subsets[0]}"))  # ultralytics requires val
        config = {**splits, "names": dataset.label_names}  # no `path`: ultralytics then uses this folder
        if task != "detect":
            config["task"] = task
        if task == "pose":
            config["kpt_shape"] = [keypoints, 3]
        with atomic_file(out / "data.yaml") as handle:
            yaml.safe_dump(config, handle, sort_keys=False, allow_unicode=True)


def _label_paths(items: list[AnnotatedImage]) -> list[str]:
    """Each item's label file, relative to the output folder; two images of one name in a split are
    refused before anything is written."""
    paths = []
    seen = set()
    for item in items:
        subset = split_name(subset_of(item))
        relative = relative_name(item.image.file_name)
        label_path = f"labels/{subset}/{relative.with_suffix('.txt')}"
        if label_path in seen:
            raise AnnotationError(f"two images named {relative} in split {subset}", item.image.file_name)
        seen.add(label_path)
        paths.append(label_path)
    return paths


def _write_labels(index: int, item: AnnotatedImage, out: Path, label_paths: list[str], index_by_label: dict[str, int],
                  task: str, keypoints: int, save_conf: bool) -> None:
    text = dump_labels(item.regions, index_by_label, item.image.width, item.image.height, task, keypoints, save_conf)
    with open(out / label_paths[index], "w", encoding="utf-8") as handle:
        handle.write(text)


def _place_image(source: Path, target: Path) -> None:
    if not source.is_file() or source.suffix.lower() not in IMAGE_SUFFIXES:
        raise AnnotationError("image not found", str(source))
    link_or_copy(source, target)
