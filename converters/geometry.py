"""Geometry shared by several formats: rotated boxes from corners, masks to polygons."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .types import Box, Mask


def box_from_corners(corners: np.ndarray) -> Box:
    """A rotated Box from four corners in drawing order (the inverse of Box.corners)."""
    corners = np.asarray(corners, dtype=float).reshape(4, 2)
    cx, cy = corners.mean(axis=0)
    width = float(np.hypot(*(corners[1] - corners[0])))
    height = float(np.hypot(*(corners[2] - corners[1])))
    dx, dy = corners[1] - corners[0]
    rotation = math.degrees(math.atan2(dy, dx)) % 360.0
    return Box(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2, rotation)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (unrotated) boxes; 0 when both are empty."""
    width = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    height = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = width * height
    union = a.width * a.height + b.width * b.height - inter
    return float(inter / union) if union > 0 else 0.0


def mask_to_polygons(mask: Mask) -> list[np.ndarray]:
    """Outer contours of a mask as polygon rings on pixel corners, each an (n >= 3, 2) float array.

    OpenCV traces pixel centres, which would shrink every object by half a pixel on each side.
    Tracing the mask upsampled 2x and mapping index k to corner ceil(k / 2) puts the vertices
    of straight edges exactly on the pixel boundary instead.
    """
    box = mask.bounding_box()  # from the RLE itself, without scanning the decoded pixels
    if box.width == 0 or box.height == 0:
        return []
    left, top = int(box.x1), int(box.y1)
    crop = mask.to_array()[top:int(box.y2), left:int(box.x2)].astype(np.uint8)
    doubled = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)
    contours, _ = cv2.findContours(doubled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rings = []
    for contour in contours:
        points = (contour.reshape(-1, 2) + 1) // 2 + [left, top]
        points = points[np.any(points != np.roll(points, 1, axis=0), axis=1)]  # drop repeated vertices
        if len(points) >= 3:
            rings.append(points.astype(float))
    return rings


def mask_outline(mask: Mask) -> np.ndarray | None:
    """The one polygon that stands for a mask where a format allows a single ring: its outer
    contour with the most vertices, or None when no contour has three."""
    rings = mask_to_polygons(mask)
    return max(rings, key=len) if rings else None


def polygons_to_mask(rings, width: int, height: int) -> Mask:
    """Rasterise polygon rings (pixel-edge coordinates) the way COCO does."""
    from pycocotools import mask as coco_mask

    flat = [[c for point in ring for c in point] for ring in rings]
    return Mask(coco_mask.merge(coco_mask.frPyObjects(flat, height, width)))
