"""COCO instances JSON.

Quirks kept: category and image ids are preserved (COCO ids have gaps), polygons may be several
rings per object, masks are RLE (compressed string or uncompressed counts, column-major), iscrowd,
and any field COCO does not define is kept and written back. Rotation (CVAT's COCO extension) is
an extra `rotation` field in degrees about the box centre.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson
from pycocotools import mask as coco_mask

from . import fields
from .coco_plain import AREA, plain_box_regions
from .files import atomic_file
from .skipping import element
from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape

NAME = "coco"
_ANNOTATION_FIELDS = {"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd", "score",
                      "rotation", "keypoints", "num_keypoints", "polyline", "source"}
_IMAGE_FIELDS = {"id", "file_name", "width", "height", "score"}  # score: the task score of a prediction
_CATEGORY_FIELDS = {"id", "name"}
EXTRA = "coco."  # prefix of attributes that only COCO reads back


def _extras(obj: dict, known: set[str]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in known}


def _parse_category(obj: Any) -> Category:
    return Category(fields.require(obj, "name", str), fields.require(obj, "id", int), _extras(obj, _CATEGORY_FIELDS))


def _parse_image(obj: Any) -> ImageRecord:
    return ImageRecord(
        fields.require(obj, "id", (int, str)),
        fields.require(obj, "file_name", str),
        fields.require(obj, "width", int),
        fields.require(obj, "height", int),
        _extras(obj, _IMAGE_FIELDS),
    )


def _parse_annotation(obj: Any, image: ImageRecord, label: str) -> Region:
    x, y, w, h = _bbox(obj)
    attributes: dict[str, Any] = {EXTRA + key: value for key, value in obj.items() if key not in _ANNOTATION_FIELDS}
    if "area" in obj:
        attributes[AREA] = obj["area"]
    if obj.get("iscrowd"):
        attributes["iscrowd"] = 1
    segmentation = obj.get("segmentation") or []
    keypoints = _keypoints(obj)
    shape, points, mask = Shape.BOX, (), None
    if isinstance(segmentation, dict):
        mask = Mask.from_coco(segmentation)
        if (mask.width, mask.height) != (image.width, image.height):
            raise AnnotationError(
                f"RLE size {mask.width}x{mask.height} disagrees with image {image.width}x{image.height}"
            )
        shape = Shape.MASK
    elif isinstance(segmentation, list) and segmentation:
        if not all(isinstance(ring, list) and len(ring) >= 6 and len(ring) % 2 == 0 for ring in segmentation):
            raise AnnotationError("segmentation polygons must be lists of at least 3 x, y pairs")
        shape, points = Shape.POLYGON, tuple(tuple(zip(ring[0::2], ring[1::2])) for ring in segmentation)
    elif obj.get("num_keypoints") and keypoints:  # keypoints alone: the visible ones are the drawing
        shape, points = Shape.POINTS, (tuple((x, y) for x, y, v in keypoints if v),)
    elif obj.get("polyline"):
        flat = obj["polyline"]
        shape, points = Shape.POLYLINE, (tuple(zip(flat[0::2], flat[1::2])),)
    return Region(
        label=label,
        shape=shape,
        box=Box(x, y, x + w, y + h, fields.number(obj, "rotation", 0.0) if "rotation" in obj else 0.0),
        points=points,
        mask=mask,
        score=fields.number(obj, "score", None) if "score" in obj else None,
        source=obj.get("source"),
        id=obj.get("id"),
        attributes=attributes,
        keypoints=keypoints,
    )


def _keypoints(obj: Any) -> tuple:
    """Every keypoint, (x, y, visibility), whatever else the annotation has (person_keypoints files
    carry a segmentation too); visibility 0 ones stay, so the others keep their index."""
    flat = obj.get("keypoints") or []
    if not isinstance(flat, list) or len(flat) % 3 or not all(type(v) in (int, float) for v in flat):
        raise AnnotationError(f"keypoints must be a flat list of x, y, visibility triples, got {flat!r:.80}")
    return tuple((flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3))


def _bbox(obj: Any) -> list[float]:
    bbox = fields.require(obj, "bbox", list)
    if len(bbox) != 4 or not all(type(v) in (int, float) for v in bbox):
        raise AnnotationError(f"bbox must be [x, y, width, height], got {bbox!r}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise AnnotationError(f"bbox has a negative size: {bbox!r}")
    return bbox


def parse(doc: Any) -> Dataset:
    """COCO instances dict -> Dataset. Errors name the list and index of the bad element."""
    if not isinstance(doc, dict):
        raise AnnotationError("top level must be a JSON object")
    other = _other_task(doc)
    if other:
        raise AnnotationError(f"this is a COCO {other} file, not object instances (boxes, polygons, masks): "
                              "openautoglm reads instances and keypoints")
    categories: dict[int, Category] = {}
    items: dict[Any, AnnotatedImage] = {}
    for section, parse_one, store in (
        ("categories", _parse_category, lambda c: categories.__setitem__(c.id, c)),
        ("images", _parse_image, lambda i: items.__setitem__(i.id, AnnotatedImage(i))),
    ):
        for index, obj in enumerate(doc.get(section) or []):
            with element(f"{section}[{index}]"):
                store(parse_one(obj))
                if section == "images" and isinstance(obj, dict) and "score" in obj:
                    items[obj["id"]].score = fields.number(obj, "score", None)
    annotations = doc.get("annotations") or []
    labels = {category_id: category.name for category_id, category in categories.items()}
    plain = plain_box_regions(annotations, items, labels) if isinstance(annotations, list) else []
    for index, obj in enumerate(annotations):
        if index < len(plain) and plain[index] is not None:
            items[obj["image_id"]].regions.append(plain[index])
            continue
        ident = obj.get("id") if isinstance(obj, dict) else None
        with element(f"annotations[{index}]" + (f" (id {ident})" if ident is not None else "")):
            item = items.get(fields.require(obj, "image_id", (int, str)))
            if item is None:
                raise AnnotationError(f"unknown image_id {obj['image_id']!r}")
            category = categories.get(obj.get("category_id"))
            if category is None:
                fields.require(obj, "category_id", int)
                raise AnnotationError(f"unknown category_id {obj['category_id']!r}")
            item.regions.append(_parse_annotation(obj, item.image, category.name))
    attributes = _extras(doc, {"categories", "images", "annotations"})
    return Dataset(list(categories.values()), list(items.values()), attributes)


def _other_task(doc: dict) -> str | None:
    """The COCO task of a file that holds no instances: captions, panoptic segmentation or image labels."""
    annotations = [a for a in (doc.get("annotations") or [])[:50] if isinstance(a, dict)]
    if not annotations:
        return None
    if all("caption" in a and "category_id" not in a for a in annotations):
        return "captions"
    if all("segments_info" in a for a in annotations):
        return "panoptic"
    if all("category_id" in a and not any(k in a for k in ("bbox", "segmentation", "keypoints")) for a in annotations):
        return "image labels (categories per image, no regions)"
    return None


def _assign_ids(existing: list[Any]) -> list[int]:
    """Keep unique integer ids; give the others fresh ones above the largest."""
    seen: set[int] = set()
    for value in existing:
        if isinstance(value, int) and not isinstance(value, bool):
            seen.add(value)
    counts: dict[Any, int] = {}
    for value in existing:
        counts[value] = counts.get(value, 0) + 1
    next_id = max(seen, default=0) + 1
    result = []
    for value in existing:
        if isinstance(value, int) and not isinstance(value, bool) and counts[value] == 1:
            result.append(value)
        else:
            result.append(next_id)
            next_id += 1
    return result


def _dump_region(region: Region, annotation_id: int, image_id: int, category_id: int) -> dict[str, Any]:
    box = region.box
    obj: dict[str, Any] = {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [box.x1, box.y1, box.width, box.height],
        "iscrowd": int(bool(region.attributes.get("iscrowd", 0))),
    }
    if region.shape is Shape.POLYGON:
        obj["segmentation"] = [[c for point in ring for c in point] for ring in region.points]
    elif region.mask is not None:
        obj["segmentation"] = {"size": list(region.mask.rle["size"]), "counts": region.mask.rle["counts"].decode()}
    else:
        obj["segmentation"] = []
    if region.keypoints:
        obj["keypoints"] = [c for x, y, v in region.keypoints for c in (x, y, v)]
        obj["num_keypoints"] = sum(1 for _, _, v in region.keypoints if v)
    elif region.shape is Shape.POINTS:
        obj["keypoints"] = [c for x, y in region.points[0] for c in (x, y, 2)]
        obj["num_keypoints"] = len(region.points[0])
    elif region.shape is Shape.POLYLINE:
        obj["polyline"] = [c for point in region.points[0] for c in point]
    obj["area"] = region.attributes.get(EXTRA + "area", _area(region, obj))
    if box.rotation:
        obj["rotation"] = box.rotation
    if region.confidence is not None:
        obj["score"] = region.confidence
    if region.source is not None:
        obj["source"] = region.source
    for key, value in region.attributes.items():
        if key.startswith(EXTRA):
            obj.setdefault(key[len(EXTRA):], value)
    return obj


def _area(region: Region, obj: dict[str, Any]) -> float:
    if region.mask is not None:
        return float(region.mask.area())
    if region.shape is Shape.POLYGON:
        # pycocotools rasterises polygons; COCO's own areas are computed the same way.
        height = int(max(y for ring in region.points for _, y in ring)) + 2
        width = int(max(x for ring in region.points for x, _ in ring)) + 2
        return float(coco_mask.area(coco_mask.merge(coco_mask.frPyObjects(obj["segmentation"], height, width))))
    return float(region.box.width * region.box.height)


class _Numbering:
    """The ids a dump gives categories, images and annotations (unique given ids kept, the others
    numbered above them), worked out in a pass over the items that keeps only the ids."""

    def __init__(self, dataset: Dataset):
        self.category_ids = _assign_ids([c.id for c in dataset.categories])
        self.image_ids = _assign_ids([item.image.id for item in dataset.items])
        self.region_ids = _assign_ids([r.id for item in dataset.items for r in item.regions])
        self.id_by_label = {c.name: i for c, i in zip(dataset.categories, self.category_ids)}


def _categories(dataset: Dataset, numbering: _Numbering) -> list[dict[str, Any]]:
    return [{"id": i, "name": c.name, **c.attributes} for c, i in zip(dataset.categories, numbering.category_ids)]


def _images(dataset: Dataset, numbering: _Numbering) -> Iterator[dict[str, Any]]:
    for item, i in zip(dataset.items, numbering.image_ids):
        yield {"id": i, "file_name": item.image.file_name, "width": item.image.width, "height": item.image.height,
               **({"score": item.score} if item.score is not None else {}), **item.image.attributes}


def _annotations(dataset: Dataset, numbering: _Numbering) -> Iterator[dict[str, Any]]:
    ids = iter(numbering.region_ids)
    for item, image_id in zip(dataset.items, numbering.image_ids):
        for region in item.regions:
            annotation_id = next(ids)
            if region.shape is Shape.TAG:
                continue  # COCO has no image-level labels
            yield _dump_region(region, annotation_id, image_id, numbering.id_by_label[region.label])


def dump(dataset: Dataset) -> dict[str, Any]:
    """Dataset -> COCO instances dict. Deterministic: same input, same output."""
    dataset = dataset.with_all_labels()
    numbering = _Numbering(dataset)
    doc = _top_level(dataset)
    doc["categories"] = _categories(dataset, numbering)
    doc["images"] = list(_images(dataset, numbering))
    doc["annotations"] = list(_annotations(dataset, numbering))
    return doc


def _top_level(dataset: Dataset) -> dict[str, Any]:
    return {k: v for k, v in dataset.attributes.items() if k not in ("categories", "images", "annotations")}


def load_json(path: Path, fast: bool = True) -> Any:
    """The JSON document in `path`, read by orjson where `fast` (half the time of `json` on a large
    COCO file, at the same peak memory); where orjson refuses it, or not `fast`, by `json`, which
    also takes NaN and integers past 64 bits and names the line and column of an error. An
    undecodable file is an error that says so."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise AnnotationError(f"cannot read: {error.strerror}", str(path)) from None
    if fast:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AnnotationError(f"not UTF-8 text (byte {error.start}): not a JSON file", str(path)) from None
    del data  # a large file in memory once, not twice
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotationError(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
                              str(path)) from None


def read(path: Path, images_dir: Path | None = None) -> Dataset:
    doc = load_json(path)
    try:
        return parse(doc)
    except AnnotationError as error:
        raise error.at(str(path)) from None


def write(dataset: Dataset, path: Path, images_dir: Path | None = None) -> None:
    """The file `json.dumps(dump(dataset))` would give, written object by object: memory stays that
    of one image's annotations (a streamed dataset's items are read again for each pass), and
    each object is encoded by json's C encoder (`json.dump` to a file uses the pure-Python one,
    3-5x slower)."""
    dataset = dataset.with_all_labels()
    numbering = _Numbering(dataset)
    with atomic_file(Path(path)) as handle:
        head = encode(_top_level(dataset))
        handle.write(head[:-1] + ("," if len(head) > 2 else "") + '"categories":'
                     + encode(_categories(dataset, numbering)) + ',"images":')
        write_list(handle, _images(dataset, numbering))
        handle.write(',"annotations":')
        write_list(handle, _annotations(dataset, numbering))
        handle.write("}")


def encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write_list(handle, values: Iterable[Any]) -> None:
    """A JSON list written element by element, as `json.dumps` writes it whole."""
    write_encoded_list(handle, map(encode, values))


def write_encoded_list(handle, texts: Iterable[str]) -> None:
    """`write_list` for elements already encoded (`encode`)."""
    handle.write("[")
    for index, text in enumerate(texts):
        handle.write(("," if index else "") + text)
    handle.write("]")
