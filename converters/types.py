"""The one canonical annotation type that crosses every boundary of openautoglm.

Conventions (the only ones used anywhere in the project):
- Coordinates are absolute float pixels, origin at the top-left corner of the top-left pixel,
  x to the right, y down. A box spans [x1, x2) x [y1, y2): a box covering exactly the pixel
  (0, 0) is (0, 0, 1, 1).
- Rotation is in degrees, clockwise as seen on screen, about the box *centre*. (x1, y1, x2, y2)
  is the box before rotation. Label Studio's top-left pivot is converted in its converter.
- Image sizes are as displayed, i.e. after EXIF orientation, named `width` and `height`.
- Labels are names, never class indices; format readers and writers map indices to names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping

import numpy as np
from pycocotools import mask as coco_mask


class AnnotationError(ValueError):
    """Invalid annotation data. `where` names the file and element, `reason` says what is wrong."""

    def __init__(self, reason: str, where: str | None = None):
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)

    def __reduce__(self):  # raised in a conversion process (`parallel`), re-raised here whole
        return AnnotationError, (self.reason, self.where)

    def at(self, where: str) -> "AnnotationError":
        """The same error, located more precisely (outermost location first)."""
        return AnnotationError(self.reason, f"{where}: {self.where}" if self.where else where)


class Shape(str, Enum):
    """What the annotator (or model) drew. Every region also has a bounding `box` except tags."""

    BOX = "box"
    POLYGON = "polygon"
    POLYLINE = "polyline"
    POINTS = "points"
    MASK = "mask"
    TAG = "tag"


def _check_finite(name: str, *values: float) -> None:
    for value in values:
        if type(value) is not float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise AnnotationError(f"{name} must be a finite number, got {value!r}")
        if not math.isfinite(value):
            raise AnnotationError(f"{name} must be a finite number, got {value!r}")


def _check_unit_interval(name: str, value: float | None) -> None:
    if value is None:
        return
    _check_finite(name, value)
    if not 0.0 <= value <= 1.0:
        raise AnnotationError(f"{name} must be in [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float
    rotation: float = 0.0  # degrees, clockwise, about the centre

    def __post_init__(self) -> None:
        _check_finite("box coordinate", self.x1, self.y1, self.x2, self.y2)
        _check_finite("box rotation", self.rotation)
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise AnnotationError(
                f"box needs x1 <= x2 and y1 <= y2, got ({self.x1}, {self.y1}, {self.x2}, {self.y2})"
            )

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the box as drawn, i.e. after rotation."""
        if not self.rotation:
            return self.x1, self.y1, self.x2, self.y2
        corners = self.corners()
        (xmin, ymin), (xmax, ymax) = corners.min(axis=0), corners.max(axis=0)
        return float(xmin), float(ymin), float(xmax), float(ymax)

    def corners(self) -> np.ndarray:
        """The four corners after rotation, clockwise from the (unrotated) top-left, shape (4, 2)."""
        cx, cy = self.center
        half_w, half_h = self.width / 2, self.height / 2
        offsets = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
        theta = math.radians(self.rotation)
        cos, sin = math.cos(theta), math.sin(theta)
        rotated = offsets @ np.array([[cos, sin], [-sin, cos]])
        return rotated + [cx, cy]

    @classmethod
    def around(cls, xs: Iterable[float], ys: Iterable[float]) -> "Box":
        xs, ys = list(xs), list(ys)
        return cls(min(xs), min(ys), max(xs), max(ys))


@dataclass(frozen=True, slots=True)
class Mask:
    """A binary mask over the whole image, stored as compressed COCO RLE (column-major)."""

    rle: Mapping[str, Any]  # {"size": [height, width], "counts": bytes}

    def __post_init__(self) -> None:
        size = self.rle.get("size") if isinstance(self.rle, Mapping) else None
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(int(v) >= 0 for v in size)):
            raise AnnotationError(f"mask RLE needs size [height, width], got {size!r}")
        if not isinstance(self.rle.get("counts"), bytes):
            raise AnnotationError("mask RLE counts must be compressed bytes; use Mask.from_coco")

    @classmethod
    def from_array(cls, array: np.ndarray) -> "Mask":
        array = np.asarray(array)
        if array.ndim != 2:
            raise AnnotationError(f"mask must be 2-D (height, width), got shape {array.shape}")
        return cls(coco_mask.encode(np.asfortranarray(array, dtype=np.uint8)))

    @classmethod
    def from_coco(cls, segmentation: Mapping[str, Any]) -> "Mask":
        """Compressed or uncompressed COCO RLE, as found in instances JSON."""
        height, width = (int(v) for v in segmentation["size"])
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if sum(counts) != height * width:
                raise AnnotationError(
                    f"uncompressed RLE covers {sum(counts)} pixels but size {width}x{height} has {width * height}"
                )
            rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        else:
            rle = {"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts}
        return cls(rle)

    @property
    def height(self) -> int:
        return int(self.rle["size"][0])

    @property
    def width(self) -> int:
        return int(self.rle["size"][1])

    def to_array(self) -> np.ndarray:
        return coco_mask.decode(dict(self.rle)).astype(bool)

    def area(self) -> int:
        return int(coco_mask.area(dict(self.rle)))

    def bounding_box(self) -> "Box":
        x, y, w, h = (float(v) for v in coco_mask.toBbox(dict(self.rle)))
        return Box(x, y, x + w, y + h)

    def __eq__(self, other: object) -> bool:
        # Compressed COCO RLE is canonical: equal strings mean pixel-identical masks.
        return isinstance(other, Mask) and list(self.rle["size"]) == list(other.rle["size"]) and (
            self.rle["counts"] == other.rle["counts"]
        )

    def __hash__(self) -> int:
        return hash((tuple(self.rle["size"]), self.rle["counts"]))


Point = tuple[float, float]
_MIN_POINTS = {Shape.POLYGON: 3, Shape.POLYLINE: 2, Shape.POINTS: 1}


@dataclass(frozen=True, slots=True)
class Region:
    """One annotated object (or an image-level tag).

    `points` holds the drawn geometry: polygon rings for POLYGON (a COCO object may have several),
    one line for POLYLINE, one list of points for POINTS; empty otherwise. `box` is the drawn box
    for BOX and the bounding box of the geometry for the others (derived when not given).
    """

    label: str
    shape: Shape = Shape.BOX
    box: Box | None = None
    points: tuple[tuple[Point, ...], ...] = ()
    mask: Mask | None = None
    score: float | None = None  # raw model score
    calibrated_score: float | None = None
    source: str | None = None  # "human", or "model-name@version"
    id: int | str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # COCO-style keypoints of the object, in the order its category names them: (x, y, visibility),
    # visibility 0 not labelled, 1 labelled but hidden, 2 visible; every one kept, so indices hold
    keypoints: tuple[tuple[float, float, int], ...] = ()

    @property
    def confidence(self) -> float | None:
        """The score a person is shown and a writer writes: the calibrated one where there is one,
        else the raw model score (what a file read back holds)."""
        return self.calibrated_score if self.calibrated_score is not None else self.score

    def __post_init__(self) -> None:
        if self.keypoints:
            keypoints = tuple((float(x), float(y), int(v)) for x, y, v in self.keypoints)
            for x, y, v in keypoints:
                _check_finite("keypoint", x, y)
                if v not in (0, 1, 2):
                    raise AnnotationError(f"keypoint visibility must be 0, 1 or 2, got {v}")
            object.__setattr__(self, "keypoints", keypoints)
        if not isinstance(self.label, str) or not self.label:
            raise AnnotationError(f"region label must be a non-empty name, got {self.label!r}")
        shape = self.shape
        if type(shape) is not Shape:
            shape = Shape(shape)
            object.__setattr__(self, "shape", shape)
        if self.score is not None:
            _check_unit_interval("score", self.score)
        if self.calibrated_score is not None:
            _check_unit_interval("calibrated score", self.calibrated_score)
        if self.points:
            points = tuple(tuple((float(x), float(y)) for x, y in ring) for ring in self.points)
            object.__setattr__(self, "points", points)
            for ring in points:
                for x, y in ring:
                    _check_finite(f"{shape.value} point", x, y)
        required = _MIN_POINTS.get(shape)
        if required and (not self.points or any(len(ring) < required for ring in self.points)):
            raise AnnotationError(f"{shape.value} needs at least {required} points per ring")
        if shape is Shape.MASK and self.mask is None:
            raise AnnotationError("mask region has no mask")
        if self.box is None and shape is not Shape.TAG:
            object.__setattr__(self, "box", self._derived_box())

    def _derived_box(self) -> Box:
        if self.points:
            return Box.around(
                (x for ring in self.points for x, _ in ring), (y for ring in self.points for _, y in ring)
            )
        if self.mask is not None:
            return self.mask.bounding_box()
        raise AnnotationError(f"{self.shape.value} region has no geometry")


# each slot's own setter (where object.__setattr__ ends, without looking the name up every time)
_x1, _y1, _x2, _y2, _rotation = (getattr(Box, name).__set__ for name in ("x1", "y1", "x2", "y2", "rotation"))
_label, _shape, _box, _points, _mask, _score, _calibrated, _source, _id, _attributes, _keypoints = (
    getattr(Region, name).__set__ for name in ("label", "shape", "box", "points", "mask", "score", "calibrated_score",
                                               "source", "id", "attributes", "keypoints"))


def checked_box_region(label: str, x1: float, y1: float, x2: float, y2: float, id: int | str | None,
                       attributes: Mapping[str, Any]) -> Region:
    """`Region(label, box=Box(x1, y1, x2, y2), id=id, attributes=attributes)` for a reader that has
    checked its values all at once (finite coordinates, x1 <= x2, y1 <= y2, a non-empty label):
    built without the per-object checks, a fifth of the time (100,000 COCO boxes)."""
    box = object.__new__(Box)
    _x1(box, x1)
    _y1(box, y1)
    _x2(box, x2)
    _y2(box, y2)
    _rotation(box, 0.0)
    region = object.__new__(Region)
    _label(region, label)
    _shape(region, Shape.BOX)
    _box(region, box)
    _points(region, ())
    _mask(region, None)
    _score(region, None)
    _calibrated(region, None)
    _source(region, None)
    _id(region, id)
    _attributes(region, attributes)
    _keypoints(region, ())
    return region


@dataclass(frozen=True, slots=True)
class ImageRecord:
    id: int | str | None
    file_name: str  # a relative path or a URI
    width: int  # as displayed: after EXIF orientation
    height: int
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.file_name:
            raise AnnotationError("image needs a file name or URI")
        for name, value in (("width", self.width), ("height", self.height)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise AnnotationError(f"image {self.file_name!r}: {name} must be a positive integer, got {value!r}")


@dataclass(slots=True)
class AnnotatedImage:
    image: ImageRecord
    regions: list[Region] = field(default_factory=list)
    score: float | None = None  # per-image (per-task) score, e.g. a prediction's overall confidence


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    id: int | None = None  # the source format's id (COCO ids have gaps); None where a format has none
    attributes: Mapping[str, Any] = field(default_factory=dict)  # e.g. COCO supercategory


@dataclass(slots=True)
class Dataset:
    categories: list[Category] = field(default_factory=list)
    items: list[AnnotatedImage] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)  # e.g. COCO info and licenses

    @property
    def label_names(self) -> list[str]:
        return [category.name for category in self.categories]

    def with_all_labels(self) -> "Dataset":
        """Categories extended, in order of first use, by any region label they do not name."""
        known = set(self.label_names)
        categories = list(self.categories)
        for item in self.items:
            for region in item.regions:
                if region.label not in known:
                    known.add(region.label)
                    categories.append(Category(region.label))
        return Dataset(categories, self.items, self.attributes)
