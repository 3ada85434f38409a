"""The two forms in which CVAT's auto-annotation receives a mask.

- Nuclio (serverless functions answering CVAT's lambda manager): the crop of the mask's box as a
  flat row-major 0/1 list, followed by the box [xtl, ytl, xbr, ybr] with an inclusive right/bottom.
- SDK (`cvat_sdk.masks.encode_mask`, used by cvat-sdk auto-annotation functions): run lengths of
  that crop, background first, followed by the same inclusive box.
Both decode to a full-image Mask; both reject a box outside the image or a length mismatch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .cvat_format import crop_runs, full_mask, mask_crop, runs_to_crop
from .types import AnnotationError, Mask


def _box(values: Sequence[float]) -> tuple[int, int, int, int]:
    if len(values) < 4 or any(float(v) != int(v) for v in values[-4:]):
        raise AnnotationError("mask must end with an integer box [xtl, ytl, xbr, ybr]")
    left, top, right, bottom = (int(v) for v in values[-4:])
    if right < left or bottom < top:
        raise AnnotationError(f"mask box [{left}, {top}, {right}, {bottom}] is inverted")
    return left, top, right, bottom


def to_nuclio(mask: Mask) -> list[int]:
    crop, left, top, right, bottom = mask_crop(mask)
    return crop.astype(np.uint8).ravel().tolist() + [left, top, right, bottom]


def from_nuclio(values: Sequence[float], width: int, height: int) -> Mask:
    left, top, right, bottom = _box(values)
    crop_w, crop_h = right - left + 1, bottom - top + 1
    bits = values[:-4]
    if len(bits) != crop_w * crop_h:
        raise AnnotationError(f"mask has {len(bits)} values but its {crop_w}x{crop_h} box needs {crop_w * crop_h}")
    crop = np.asarray(bits, dtype=float).reshape(crop_h, crop_w) > 0
    return full_mask(crop, left, top, width, height)


def to_sdk(mask: Mask) -> list[int]:
    crop, left, top, right, bottom = mask_crop(mask)
    return crop_runs(crop) + [left, top, right, bottom]


def from_sdk(values: Sequence[float], width: int, height: int) -> Mask:
    left, top, right, bottom = _box(values)
    runs = [int(v) for v in values[:-4]]
    return full_mask(runs_to_crop(runs, right - left + 1, bottom - top + 1), left, top, width, height)
