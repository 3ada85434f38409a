"""The real COCO data (../shared/data/coco128-train) taken COCO -> every format -> COCO."""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from openautoglm.converters import Shape, load, save

# Box tolerance per format: COCO and CVAT keep floats; VOC stores integers; YOLO derives the box
# from the polygon. Two exceptions, see _tolerance.
FORMATS = [
    pytest.param("coco", ".json", 1e-6, id="coco"),
    pytest.param("label_studio", ".json", 1e-6, id="label_studio"),
    pytest.param("cvat", ".xml", 1e-6, id="cvat"),
    pytest.param("voc", "", 1.0, id="voc"),
    pytest.param("yolo", "", 1.0, id="yolo"),
    pytest.param("labelme", "", 1e-6, id="labelme"),
]


@pytest.fixture(scope="module")
def coco128(shared: Path):
    root = shared / "data" / "coco128-train"
    return load(root / "annotations" / "instances.json", "coco"), root / "images"


@pytest.mark.parametrize("fmt, suffix, tolerance", FORMATS)
def test_coco128_through_format_and_back(coco128, fmt: str, suffix: str, tolerance: float, tmp_path: Path) -> None:
    original, images = coco128
    save(original, tmp_path / f"out{suffix}", fmt)
    middle = load(tmp_path / f"out{suffix}", fmt, images)
    save(middle, tmp_path / "back.json", "coco")
    back = load(tmp_path / "back.json", "coco")

    assert len(back.items) == len(original.items) == 128
    assert sum(len(i.regions) for i in back.items) == sum(len(i.regions) for i in original.items) == 939
    returned = {PurePosixPath(i.image.file_name).name: i for i in back.items}
    for item in original.items:
        other = returned[item.image.file_name]
        assert (other.image.width, other.image.height) == (item.image.width, item.image.height)
        assert Counter(r.label for r in other.regions) == Counter(r.label for r in item.regions)
        for region, twin in _pairs(item.regions, other.regions):
            np.testing.assert_allclose(_xyxy(twin), _xyxy(region), atol=_tolerance(region, fmt, tolerance),
                                       err_msg=f"{item.image.file_name} {region.label}")
            if region.shape is Shape.MASK and fmt in ("coco", "label_studio", "cvat"):
                assert np.array_equal(twin.mask.to_array(), region.mask.to_array())
            if region.shape is Shape.POLYGON and len(region.points) == 1 and fmt != "voc":
                np.testing.assert_allclose(twin.points[0], region.points[0], atol=1e-6)


def test_coco_round_trip_keeps_ids_and_extra_fields(coco128, tmp_path: Path) -> None:
    original, _ = coco128
    save(original, tmp_path / "a.json", "coco")
    again = load(tmp_path / "a.json", "coco")
    assert [c.id for c in again.categories] == [c.id for c in original.categories]
    assert [i.image.id for i in again.items] == [i.image.id for i in original.items]
    assert [r.id for i in again.items for r in i.regions] == [r.id for i in original.items for r in i.regions]
    assert [i.image.attributes for i in again.items] == [i.image.attributes for i in original.items]
    assert again.attributes == original.attributes


def _tolerance(region, fmt: str, default: float) -> float:
    if region.shape is Shape.MASK and fmt != "coco":
        return 1.0  # the box comes back from the mask; COCO's crowd boxes are 1 px short of their masks
    if region.shape is Shape.POLYGON and len(region.points) > 1 and fmt == "label_studio":
        return 3.0  # one ring per Label Studio polygon: a multi-ring object is a rasterised brush mask
    return default


def _xyxy(region) -> np.ndarray:
    return np.array([region.box.x1, region.box.y1, region.box.x2, region.box.y2])


def _pairs(regions, others):
    """Each region with the nearest unmatched region of the same label."""
    left = list(others)
    for region in regions:
        twin = min((o for o in left if o.label == region.label),
                   key=lambda o: np.abs(_xyxy(o) - _xyxy(region)).max())
        left.remove(twin)
        yield region, twin
