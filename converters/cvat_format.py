"""CVAT for images 1.1: the format's names and its mask encoding, shared by the reader, the writer
and the CVAT wire forms (converters.cvat_wire). Masks are `rle` run lengths (background first,
row-major) over the crop `left, top, width, height` (width = right - left + 1)."""

from __future__ import annotations

import numpy as np

from .types import AnnotationError, Mask, Shape

NAME = "cvat"
HUMAN = "human"
SOURCES = {"manual", "auto", "semi-auto", "file"}
CONFIDENCE = "confidence"  # the attribute a region's score is kept in: CVAT stores no score on shapes
TAGS = {"box": Shape.BOX, "polygon": Shape.POLYGON, "polyline": Shape.POLYLINE, "points": Shape.POINTS,
         "mask": Shape.MASK, "tag": Shape.TAG}


def crop_runs(bitmap: np.ndarray) -> list[int]:
    """Run lengths of a row-major bitmap, starting with a (possibly empty) background run."""
    flat = np.asarray(bitmap, dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def runs_to_crop(runs: list[int], width: int, height: int) -> np.ndarray:
    if any(r < 0 for r in runs) or sum(runs) != width * height:
        raise AnnotationError(f"mask RLE covers {sum(runs)} pixels but its {width}x{height} box has {width * height}")
    values = (np.arange(len(runs)) % 2).astype(bool)
    return np.repeat(values, runs).reshape(height, width)


def mask_crop(mask: Mask) -> tuple[np.ndarray, int, int, int, int]:
    """(crop bitmap, left, top, right, bottom) with an inclusive right/bottom, as CVAT stores masks."""
    bitmap = mask.to_array()
    ys, xs = np.nonzero(bitmap)
    if xs.size == 0:
        raise AnnotationError("mask is empty")
    left, top, right, bottom = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    return bitmap[top:bottom + 1, left:right + 1], left, top, right, bottom


def full_mask(crop: np.ndarray, left: int, top: int, width: int, height: int) -> Mask:
    crop_h, crop_w = crop.shape
    if left < 0 or top < 0 or left + crop_w > width or top + crop_h > height:
        raise AnnotationError(f"mask box ({left}, {top}, {crop_w}x{crop_h}) lies outside the {width}x{height} image")
    bitmap = np.zeros((height, width), dtype=bool)
    bitmap[top:top + crop_h, left:left + crop_w] = crop
    return Mask.from_array(bitmap)


# ---- parse ---------------------------------------------------------------------------------
