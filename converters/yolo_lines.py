"""One YOLO label file's lines, both ways: `class cx cy w h` boxes, `class x1 y1 ... xn yn` polygons,
oriented boxes' four corners, pose lines (a box and its keypoints), each optionally followed by a
confidence; coordinates normalised by the image size. The folder layouts are `yolo`'s."""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import Iterable

import numpy as np

from .fields import parse_float, parse_int
from .geometry import box_from_corners, mask_to_polygons
from .skipping import element
from .types import AnnotationError, Box, Dataset, Region, Shape

TASKS = ("detect", "segment", "obb", "pose")
_FLOAT = ".12g"  # enough digits to keep 1e-6 px on images up to 100k px wide


def parse_labels(text: str, names: list[str], width: int, height: int, task: str = "detect",
                 kpt_shape: tuple[int, int] | None = None) -> list[Region]:
    regions = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        with element(f"line {line_number}"):
            regions.append(_parse_pose(line.split(), names, width, height, kpt_shape) if task == "pose" else
                           _parse_line(line.split(), names, width, height, task))
    return regions


def _parse_line(tokens: list[str], names: list[str], width: int, height: int, task: str) -> Region:
    class_index = parse_int(tokens[0], "class index")
    if not 0 <= class_index < len(names):
        raise AnnotationError(f"class index {class_index} is not in the {len(names)} class names")
    values = [parse_float(token, f"value {i + 1}") for i, token in enumerate(tokens[1:])]
    score = None
    if len(values) in (5, 9) or (len(values) > 6 and len(values) % 2 == 1):
        *values, score = values  # a trailing confidence, as ultralytics' save_conf writes it
    xs = [v * width for v in values[0::2]]
    ys = [v * height for v in values[1::2]]
    label = names[class_index]
    if len(values) == 4:
        cx, cy, w, h = xs[0], ys[0], xs[1], ys[1]
        if w < 0 or h < 0:
            raise AnnotationError(f"negative box size {values[2]} x {values[3]}")
        return Region(label, Shape.BOX, Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), score=score)
    if len(values) == 8 and task == "obb":
        return Region(label, Shape.BOX, box_from_corners(list(zip(xs, ys))), score=score)
    if len(values) >= 6 and len(values) % 2 == 0:
        return Region(label, Shape.POLYGON, points=(tuple(zip(xs, ys)),), score=score)
    raise AnnotationError(
        f"expected 4 numbers (box), 8 (oriented box) or 6+ pairs (polygon) after the class, got {len(values)}"
    )


def _parse_pose(tokens: list[str], names: list[str], width: int, height: int,
                kpt_shape: tuple[int, int] | None) -> Region:
    """`class cx cy w h` then `kpt_shape` keypoints: x y (and visibility when the shape says 3)."""
    if not kpt_shape:
        raise AnnotationError("a pose dataset needs kpt_shape in data.yaml")
    count, dims = kpt_shape
    if len(tokens) != 5 + count * dims:
        raise AnnotationError(f"a pose line with kpt_shape [{count}, {dims}] has {5 + count * dims} numbers, "
                              f"got {len(tokens)}")
    box = _parse_line(tokens[:5], names, width, height, "detect")
    values = [parse_float(token, f"value {i + 5}") for i, token in enumerate(tokens[5:])]
    keypoints = []
    for k in range(count):
        x, y = values[k * dims] * width, values[k * dims + 1] * height
        visibility = int(values[k * dims + 2]) if dims == 3 else (0 if x == y == 0 else 2)
        keypoints.append((x, y, visibility))
    return Region(box.label, Shape.BOX, box.box, keypoints=tuple(keypoints))


def choose_task(dataset: Dataset) -> str:
    regions = list(chain.from_iterable(map(attrgetter("regions"), dataset.items)))
    if any(map(attrgetter("keypoints"), regions)):  # each pass in C: a large set is mostly boxes
        return "pose"
    if not {Shape.POLYGON, Shape.MASK}.isdisjoint(map(attrgetter("shape"), regions)):
        return "segment"
    if any(map(attrgetter("rotation"), filter(None, map(attrgetter("box"), regions)))):  # a tag has no box
        return "obb"
    return "detect"


def dump_labels(regions: Iterable[Region], index_by_label: dict[str, int], width: int, height: int, task: str,
                keypoints: int = 0, save_conf: bool = False) -> str:
    """`keypoints`: for the pose task, how many each line has (a region with fewer gets zeros).
    `save_conf`: each scored region's confidence after its coordinates, as ultralytics' save_conf
    writes it (not for training: ultralytics' loader wants 5 columns)."""
    if task == "detect" and not save_conf:
        return _detect_lines(regions, index_by_label, width, height)
    lines = []
    for region in regions:
        if region.shape is Shape.TAG:
            continue
        coordinates = _coordinates(region, "detect" if task == "pose" else task)
        normalised = [v / (width if i % 2 == 0 else height) for i, v in enumerate(coordinates)]
        if task == "pose":
            padded = list(region.keypoints) + [(0.0, 0.0, 0)] * (keypoints - len(region.keypoints))
            normalised += [c for x, y, v in padded for c in (x / width, y / height, v)]
        if save_conf and region.confidence is not None and task != "pose":
            normalised.append(region.confidence)
        lines.append(_LINE_FORMATS[len(normalised)] % (index_by_label[region.label], *normalised))
    return "".join(lines)


def _detect_lines(regions: Iterable[Region], index_by_label: dict[str, int], width: int, height: int) -> str:
    """`dump_labels` for boxes alone, inlined (the same arithmetic, so the same bytes): most large
    sets are this, and the general path's per-region lists were a third of writing them."""
    line = _LINE_FORMATS[4]
    lines = []
    for region in regions:
        if region.shape is Shape.TAG:
            continue
        x1, y1, x2, y2 = region.box.bounds()
        lines.append(line % (index_by_label[region.label], (x1 + x2) / 2 / width, (y1 + y2) / 2 / height,
                             (x2 - x1) / width, (y2 - y1) / height))
    return "".join(lines)


class _LineFormats(dict):
    """'%d %.12g ... %.12g\n' per value count: one string operation per line."""

    def __missing__(self, count: int) -> str:
        self[count] = "%d" + f" %{_FLOAT}" * count + "\n"
        return self[count]


_LINE_FORMATS = _LineFormats()


def _coordinates(region: Region, task: str) -> list[float]:
    box = region.box
    if task == "detect":
        x1, y1, x2, y2 = box.bounds()
        return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    if task == "obb" or region.shape not in (Shape.POLYGON, Shape.MASK):
        if not box.rotation:
            return [box.x1, box.y1, box.x2, box.y1, box.x2, box.y2, box.x1, box.y2]
        return box.corners().ravel().tolist()
    rings = region.points if region.shape is Shape.POLYGON else mask_to_polygons(region.mask)
    if not len(rings):
        return box.corners().ravel().tolist()
    return np.concatenate(_merge_rings(rings)).ravel().tolist()


def _merge_rings(rings) -> list[np.ndarray]:
    """One ring for a multi-ring object (YOLO has one polygon per line): each ring is walked and
    closed in turn, joined by zero-width bridges back to the first, so the extent is kept whole."""
    rings = [np.asarray(ring, dtype=float).reshape(-1, 2) for ring in rings]
    if len(rings) == 1:
        return rings
    merged = []
    for ring in rings:
        merged += [ring, ring[:1]]
    merged += [ring[:1] for ring in reversed(rings[1:-1])]
    return merged


# ---- file layer ---------------------------------------------------------------------------
