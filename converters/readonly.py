"""Formats openautoglm reads but does not write:

- CreateML JSON (Apple's object detection, also exported by Roboflow and MakeSense): a list of
  `{"image": name, "annotations": [{"label", "coordinates": {"x", "y", "width", "height"}}]}`
  with x, y the box's centre in pixels; image sizes are measured from the images.
- Segment Anything (SA-1B) JSON: one file per image (or a folder of them),
  `{"image": {"file_name", "width", "height"}, "annotations": [{"segmentation": COCO RLE,
  "predicted_iou", ...}]}`; the masks are class-agnostic, read as label `object` with
  `predicted_iou` as the score.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import fields
from .files import displayed_size, find_image
from .skipping import element
from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape

SAM_LABEL = "object"


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnnotationError(f"not readable JSON: {error}", str(path)) from None


def read_createml(path: Path, images_dir: Path | None = None) -> Dataset:
    path = Path(path)
    doc = _json(path)
    if not isinstance(doc, list):
        raise AnnotationError("CreateML JSON is a list of images", str(path))
    folder = Path(images_dir) if images_dir is not None else path.parent
    items = []
    for index, entry in enumerate(doc):
        with element(f"{path}: [{index}]"):
            name = fields.require(entry, "image", str)
            found = folder / name if (folder / name).is_file() else find_image(folder, Path(name).stem)
            if found is None:
                raise AnnotationError(f"image {name} is not in {folder} to measure it (give --images)")
            width, height = displayed_size(found)
            regions = []
            for number, annotation in enumerate(fields.require(entry, "annotations", list)):
                with element(f"annotations[{number}]"):
                    box = fields.require(annotation, "coordinates", dict)
                    x, y = fields.number(box, "x"), fields.number(box, "y")
                    w, h = fields.number(box, "width"), fields.number(box, "height")
                    regions.append(Region(fields.require(annotation, "label", str), Shape.BOX,
                                          Box(x - w / 2, y - h / 2, x + w / 2, y + h / 2)))
            items.append(AnnotatedImage(ImageRecord(index + 1, name, width, height), regions))
    return Dataset([Category(n) for n in sorted({r.label for i in items for r in i.regions})], items)


def read_sam(path: Path, images_dir: Path | None = None) -> Dataset:
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    items = []
    for number, file in enumerate(files, 1):
        with element(str(file)):
            doc = _json(file)
            image = fields.require(doc, "image", dict)
            width, height = int(fields.number(image, "width")), int(fields.number(image, "height"))
            regions = []
            for index, annotation in enumerate(fields.require(doc, "annotations", list)):
                with element(f"annotations[{index}]"):
                    mask = Mask.from_coco(fields.require(annotation, "segmentation", dict))
                    iou = annotation.get("predicted_iou")
                    score = float(iou) if isinstance(iou, (int, float)) and 0 <= iou <= 1 else None
                    regions.append(Region(SAM_LABEL, Shape.MASK, mask=mask, score=score))
            name = image.get("file_name") or f"{file.stem}.jpg"
            items.append(AnnotatedImage(ImageRecord(image.get("image_id", number), name, width, height), regions))
    return Dataset([Category(SAM_LABEL)] if any(i.regions for i in items) else [], items)


def read_only(name: str) -> AnnotationError:
    return AnnotationError(f"{name} is read-only here: write coco, voc, yolo, label-studio, cvat or labelme")


def no_writer(name: str):
    def write(*args, **kwargs) -> None:
        raise read_only(name)
    return write
