"""Which annotations of a COCO instances file are plain boxes, checked all at once: most objects of a
detection set are a box and nothing else, and checking those one by one, each in its own error
location, was three quarters of the time to read 100,000 of them. An annotation that is not plain,
or fails a check here, goes through `coco.parse`'s own path, which says what is wrong and where."""

from __future__ import annotations

from itertools import chain, repeat
from typing import Any

import numpy as np

from .types import Region, checked_box_region

# fields a plain box may have; anything else (a segmentation, keypoints, a score, a rotation, a
# field COCO does not define) takes the full path
PLAIN_FIELDS = frozenset({"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation"})
_NUMBERS = {int, float}
AREA = "coco.area"  # the attribute the full path keeps the area in (coco.EXTRA + "area")


def plain_box_regions(annotations: list[Any], images: dict, labels: dict[int, str]) -> list[Region | None]:
    """Per annotation: its Region where it is a plain box of a known image and category (`labels`:
    category id -> name), with four finite numbers (not booleans) of non-negative width and
    height; None where the full path must read it."""
    candidates = (list(range(len(annotations))) if _all_plain(annotations, images, labels)
                  else _plain_candidates(annotations, images, labels))
    bboxes = [annotations[i]["bbox"] for i in candidates]
    if not set(map(type, chain.from_iterable(bboxes))) <= _NUMBERS:  # a string or a boolean somewhere
        kept = [all(type(v) in _NUMBERS for v in box) for box in bboxes]
        candidates = [i for i, ok in zip(candidates, kept) if ok]
        bboxes = [box for box, ok in zip(bboxes, kept) if ok]
    regions: list[Region | None] = [None] * len(annotations)
    if not candidates:
        return regions
    values = np.array(bboxes, dtype=float)
    with np.errstate(invalid="ignore"):  # NaN compares false: not plain, the full path says why
        valid = np.isfinite(values).all(axis=1) & (values[:, 2] >= 0) & (values[:, 3] >= 0)
    for index, box, ok in zip(candidates, bboxes, valid.tolist()):
        if ok:
            obj = annotations[index]
            x, y, w, h = box  # the file's own numbers (an int stays an int), as the full path keeps them
            regions[index] = checked_box_region(labels[obj["category_id"]], x, y, x + w, y + h, obj.get("id"),
                                                {AREA: obj["area"]} if "area" in obj else {})
    return regions


def _all_plain(annotations: list[Any], images: dict, labels: dict) -> bool:
    """Whether every annotation has the form of a plain box, each check one pass in C over a column
    (the usual detection file); otherwise `_plain_candidates` picks them out one by one."""
    if set(map(type, annotations)) != {dict} or not all(map(PLAIN_FIELDS.issuperset, annotations)):
        return False
    if any(map(dict.get, annotations, repeat("segmentation"))) or any(map(dict.get, annotations, repeat("iscrowd"))):
        return False
    bboxes = list(map(dict.get, annotations, repeat("bbox")))
    if set(map(type, bboxes)) != {list} or set(map(len, bboxes)) != {4}:
        return False
    image_ids = list(map(dict.get, annotations, repeat("image_id")))
    category_ids = list(map(dict.get, annotations, repeat("category_id")))
    return (set(map(type, image_ids)) <= {int, str} and all(map(images.__contains__, image_ids))
            and set(map(type, category_ids)) == {int} and all(map(labels.__contains__, category_ids)))


def _plain_candidates(annotations: list[Any], images: dict, labels: dict) -> list[int]:
    return [i for i, a in enumerate(annotations)
            if type(a) is dict and a.keys() <= PLAIN_FIELDS and not a.get("segmentation")
            and not a.get("iscrowd") and type(a.get("bbox")) is list and len(a["bbox"]) == 4
            and type(a.get("image_id")) in (int, str) and a["image_id"] in images
            and type(a.get("category_id")) is int and a["category_id"] in labels]
