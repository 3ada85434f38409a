"""Geometry shared by several formats: rotated boxes from corners, masks to polygons."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .types import Box, Mask, Point


def box_from_corners(corners: np.ndarray) -> Box:
    """A rotated Box from four corners in drawing order (the inverse of Box.corners)."""
    corners = np.asarray(corners, dtype=float).reshape(4, 2)
    cx, cy = corners.mean(axis=0)
    width = float(np.hypot(*(corners[1] - corners[0])))
    height = float(np.hypot(*(corners[2] - corners[1])))
    dx, dy = corners[1] - corners[0]
    rotation = math.degrees(math.atan2(dy, dx)) % 360.0
    return Box(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2, rotation)


def mask_to_polygons(mask: Mask) -> tuple[tuple[Point, ...], ...]:
    """Outer contours of a mask as polygon rings in pixel-edge coordinates (3+ points each)."""
    bitmap = mask.to_array().astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rings = []
    for contour in contours:
        points = contour.reshape(-1, 2).astype(float)
        if len(points) >= 3:
            # cv2 returns pixel centres; +0.5 puts the vertices on pixel centres in edge coordinates.
            rings.append(tuple((x + 0.5, y + 0.5) for x, y in points))
    return tuple(rings)


def polygons_to_mask(rings, width: int, height: int) -> Mask:
    """Rasterise polygon rings (pixel-edge coordinates) the way COCO does."""
    from pycocotools import mask as coco_mask

    flat = [[c for point in ring for c in point] for ring in rings]
    return Mask(coco_mask.merge(coco_mask.frPyObjects(flat, height, width)))
