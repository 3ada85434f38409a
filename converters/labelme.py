"""LabelMe JSON: one file per image, as labelme and X-AnyLabeling write it.

Quirks kept: `imagePath` is relative to the JSON file; a rectangle is two opposite corners in any
order; a circle is its centre and a point on the rim (read as a 32-vertex polygon, written back
as a circle); a `mask` shape is a base64 PNG of its bounding box, placed at the box's first point;
`group_id` ties shapes of one object together (polygons or points of one label sharing it are
read as one object, as labelme2coco does, and written so); X-AnyLabeling's `score` and
`difficult` are read. `imageData` is neither required nor written: the images stay where they are.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from . import progress
from .files import atomic_directory, displayed_size, find_image, link_or_copy, relative_name
from .skipping import element
from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape

NAME = "labelme"
VERSION = "5.5.0"  # the labelme file version written
SHAPE_TYPE = "labelme.shape_type"
GROUP = "labelme.group_id"
CIRCLE_VERTICES = 32


def read(path: Path, images_dir: Path | None = None) -> Dataset:
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.rglob("*.json"))
    base = root.parent if root.is_file() else root
    items = []
    for json_path in progress.track(files, "reading LabelMe"):
        with element(str(json_path)):
            items.append(_read_file(json_path, base, images_dir))
    labels = sorted({r.label for item in items for r in item.regions})
    return Dataset([Category(name) for name in labels], items)


def _read_file(json_path: Path, base: Path, images_dir: Path | None) -> AnnotatedImage:
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationError(f"not readable JSON: {error}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list) or not doc.get("imagePath"):
        raise AnnotationError("not a LabelMe file (needs 'shapes' and 'imagePath')")
    image_path = str(doc["imagePath"]).replace("\\", "/")  # labelme on Windows writes backslashes
    relative = PurePosixPath(json_path.parent.relative_to(base).as_posix())
    # relative to the dataset; an image beside the annotations' folder (../images/a.jpg, a common
    # layout) keeps its path below that folder, so no writer ever writes outside its output
    parts = PurePosixPath(os.path.normpath(str(relative / image_path)).replace(os.sep, "/")).parts
    file_name = str(PurePosixPath(*[p for p in parts if p not in ("..", ".")]))
    width, height = doc.get("imageWidth"), doc.get("imageHeight")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        width, height = _measure(json_path.parent / image_path if images_dir is None else images_dir / file_name)
    regions, tags = [], []
    for index, shape in enumerate(doc["shapes"]):
        with element(f"shapes[{index}]"):
            regions.append(_read_shape(shape, width, height))
    for flag, on in (doc.get("flags") or {}).items():
        if on:
            tags.append(Region(str(flag), Shape.TAG))
    return AnnotatedImage(ImageRecord(None, file_name, width, height), _merge_groups(regions) + tags)


def _merge_groups(regions: list[Region]) -> list[Region]:
    """Polygons (or points) of one label sharing a group_id are one object, as labelme's own
    labelme2coco reads them: one region with several rings (or points), where the first one was."""
    merged: list[Region] = []
    first: dict[tuple, int] = {}
    for region in regions:
        group = region.attributes.get(GROUP)
        key = (region.label, group, region.shape)
        if group is None or region.shape not in (Shape.POLYGON, Shape.POINTS) or SHAPE_TYPE in region.attributes:
            merged.append(region)
        elif key not in first:
            first[key] = len(merged)
            merged.append(region)
        else:
            kept = merged[first[key]]
            points = kept.points + region.points if region.shape is Shape.POLYGON else \
                ((*kept.points[0], *region.points[0]),)
            merged[first[key]] = Region(kept.label, kept.shape, points=points, score=kept.score,
                                        attributes=kept.attributes)
    return merged


def _measure(path: Path) -> tuple[int, int]:
    found = path if path.is_file() else find_image(path.parent, path.stem)
    if found is None:
        raise AnnotationError(f"no imageWidth/imageHeight, and the image {path} is not there to measure")
    return displayed_size(found)


def _read_shape(shape: dict, width: int, height: int) -> Region:
    if not isinstance(shape, dict):
        raise AnnotationError("a shape must be a JSON object")
    label = str(shape.get("label") or "").strip()
    if not label:
        raise AnnotationError("shape has no label")
    kind = shape.get("shape_type") or "polygon"  # labelme 3 wrote polygons without a type
    try:
        points = tuple((float(x), float(y)) for x, y in shape.get("points") or [])
    except (TypeError, ValueError):
        raise AnnotationError(f"points must be [x, y] pairs, got {shape.get('points')!r}") from None
    attributes = {key: shape[key] for key in ("description",) if shape.get(key)}
    if shape.get("group_id") is not None:
        attributes[GROUP] = shape["group_id"]
    if shape.get("flags"):
        attributes["labelme.flags"] = shape["flags"]
    if shape.get("difficult"):
        attributes["difficult"] = True
    for key, value in (shape.get("attributes") or {}).items():  # X-AnyLabeling's free attributes
        attributes[str(key)] = value
    score = shape.get("score")
    score = float(score) if isinstance(score, (int, float)) and 0 <= score <= 1 else None
    common = dict(score=score, attributes=attributes)
    if kind == "rectangle":
        _need(points, 2, kind)
        return Region(label, Shape.BOX, Box.around([p[0] for p in points], [p[1] for p in points]), **common)
    if kind == "polygon":
        _need(points, 3, kind)
        return Region(label, Shape.POLYGON, points=(points,), **common)
    if kind in ("line", "linestrip"):
        _need(points, 2, kind)
        return Region(label, Shape.POLYLINE, points=(points,), attributes={**attributes, SHAPE_TYPE: kind},
                      score=score)
    if kind == "point":
        _need(points, 1, kind)
        return Region(label, Shape.POINTS, points=(points[:1],), **common)
    if kind == "circle":
        _need(points, 2, kind)
        (cx, cy), (rx, ry) = points[:2]
        radius = math.hypot(rx - cx, ry - cy)
        ring = tuple((cx + radius * math.cos(2 * math.pi * k / CIRCLE_VERTICES),
                      cy + radius * math.sin(2 * math.pi * k / CIRCLE_VERTICES)) for k in range(CIRCLE_VERTICES))
        return Region(label, Shape.POLYGON, points=(ring,), attributes={**attributes, SHAPE_TYPE: "circle"},
                      score=score)
    if kind == "mask":
        return Region(label, Shape.MASK, mask=_read_mask(shape, points, width, height), **common)
    raise AnnotationError(f"unknown shape_type {kind!r}")


def _need(points: tuple, count: int, kind: str) -> None:
    if len(points) < count:
        raise AnnotationError(f"a {kind} needs {count} points, got {len(points)}")


def _read_mask(shape: dict, points: tuple, width: int, height: int) -> Mask:
    if not shape.get("mask") or not points:
        raise AnnotationError("a mask shape needs 'mask' (a base64 PNG) and its top-left point")
    try:
        with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as image:
            crop = np.asarray(image.convert("L")) > 0
    except Exception as error:  # noqa: BLE001 - any decoding problem is the same bad input
        raise AnnotationError(f"mask is not a base64 PNG: {error}") from None
    x, y = (int(round(v)) for v in points[0])
    bitmap = np.zeros((height, width), dtype=bool)
    region = bitmap[max(0, y):y + crop.shape[0], max(0, x):x + crop.shape[1]]
    region |= crop[max(0, -y):max(0, -y) + region.shape[0], max(0, -x):max(0, -x) + region.shape[1]]
    return Mask.from_array(bitmap)


def write(dataset: Dataset, path: Path, images_dir: Path | None = None) -> None:
    """One `<image stem>.json` per image, beside where the image would be (with `images_dir`, the
    images are copied there too)."""
    with atomic_directory(Path(path)) as out:
        for item in progress.track(dataset.items, "writing LabelMe"):
            name = relative_name(item.image.file_name)
            target = out / name.with_suffix(".json")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(_document(item, name.name), indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
            if images_dir is not None:
                source = Path(images_dir) / item.image.file_name
                if not source.is_file():
                    raise AnnotationError("image not found to copy", str(source))
                link_or_copy(source, out / name)


def _document(item: AnnotatedImage, image_name: str) -> dict:
    shapes, groups = [], iter(range(10_000_000, 2**31))  # fresh group ids above any a user sets
    for region in item.regions:
        if region.shape is not Shape.TAG:
            shapes += _shapes(region, groups)
    return {"version": VERSION, "flags": {r.label: True for r in item.regions if r.shape is Shape.TAG},
            "shapes": shapes, "imagePath": image_name, "imageData": None,
            "imageHeight": item.image.height, "imageWidth": item.image.width}


def _shapes(region: Region, groups) -> list[dict]:
    attributes = dict(region.attributes)
    kind_hint = attributes.pop(SHAPE_TYPE, None)
    group = attributes.pop(GROUP, None)
    base = {"label": region.label, "group_id": group, "description": attributes.pop("description", ""),
            "flags": attributes.pop("labelme.flags", {})}
    if attributes.pop("difficult", False):
        base["difficult"] = True
    free = {k: v for k, v in attributes.items() if "." not in k}
    if free:
        base["attributes"] = free
    if region.confidence is not None:
        base["score"] = region.confidence

    def shape(kind: str, points, **extra) -> dict:
        return {**base, "shape_type": kind, "points": [[float(x), float(y)] for x, y in points], **extra}

    if region.shape is Shape.BOX:
        x1, y1, x2, y2 = region.box.bounds()
        return [shape("rectangle", [(x1, y1), (x2, y2)])]
    if region.shape is Shape.POLYGON and kind_hint == "circle":
        cx, cy = region.box.center
        return [shape("circle", [(cx, cy), (cx + region.box.width / 2, cy)])]
    if region.shape is Shape.POLYLINE:
        (line,) = region.points[:1]
        return [shape(kind_hint or ("line" if len(line) == 2 else "linestrip"), line)]
    if region.shape is Shape.MASK:
        return [_mask_shape(region, shape)]
    rings = region.points if region.shape is Shape.POLYGON else [(p,) for p in region.points[0]]
    if len(rings) > 1 and base["group_id"] is None:  # one object in several shapes: tied by a group id
        base["group_id"] = next(groups)
    kind = "polygon" if region.shape is Shape.POLYGON else "point"
    return [shape(kind, ring) for ring in rings]


def _mask_shape(region: Region, shape) -> dict:
    bitmap = region.mask.to_array()
    x1, y1, x2, y2 = (int(v) for v in region.mask.bounding_box().bounds())
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)  # an empty mask still needs a 1x1 PNG
    crop = bitmap[y1:y2, x1:x2]
    buffer = io.BytesIO()
    Image.fromarray(crop.astype(np.uint8) * 255, mode="L").convert("1").save(buffer, "PNG")
    return shape("mask", [(x1, y1), (x2 - 1, y2 - 1)], mask=base64.b64encode(buffer.getvalue()).decode("ascii"))
