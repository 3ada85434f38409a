"""Which annotations of a COCO instances file are plain boxes, checked all at once: most objects of a
detection set are a box and nothing else, and checking those one by one, each in its own error
location, was three quarters of the time to read 100,000 of them. An annotation that is not plain,
or fails a check here, goes through `coco.parse`'s own path, which says what is wrong and where."""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

# fields a plain box may have; anything else (a segmentation, keypoints, a score, a rotation, a
# field COCO does not define) takes the full path
PLAIN_FIELDS = frozenset({"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation"})
_NUMBERS = {int, float}


def plain_boxes(annotations: list[Any], images: dict, categories: dict) -> list[bool]:
    """Per annotation: a plain box of a known image and category, with four finite numbers (not
    booleans) of non-negative width and height."""
    candidates = [i for i, a in enumerate(annotations)
                  if type(a) is dict and a.keys() <= PLAIN_FIELDS and not a.get("segmentation")
                  and not a.get("iscrowd") and type(a.get("bbox")) is list and len(a["bbox"]) == 4
                  and type(a.get("image_id")) in (int, str) and a["image_id"] in images
                  and type(a.get("category_id")) is int and a["category_id"] in categories]
    bboxes = [annotations[i]["bbox"] for i in candidates]
    if not set(map(type, chain.from_iterable(bboxes))) <= _NUMBERS:  # a string or a boolean somewhere
        kept = [all(type(v) in _NUMBERS for v in box) for box in bboxes]
        candidates = [i for i, ok in zip(candidates, kept) if ok]
        bboxes = [box for box, ok in zip(bboxes, kept) if ok]
    plain = [False] * len(annotations)
    if not candidates:
        return plain
    values = np.array(bboxes, dtype=float)
    with np.errstate(invalid="ignore"):  # NaN compares false: not plain, the full path says why
        valid = np.isfinite(values).all(axis=1) & (values[:, 2] >= 0) & (values[:, 3] >= 0)
    for index, ok in zip(candidates, valid.tolist()):
        plain[index] = ok
    return plain
