"""The canonical type rejects invalid values at construction with a message naming the problem."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openautoglm.converters import AnnotationError, Box, ImageRecord, Mask, Region, Shape


@pytest.mark.parametrize("make, reason", [
    pytest.param(lambda: Box(10, 0, 5, 5), "x1 <= x2", id="x2-before-x1"),
    pytest.param(lambda: Box(0, math.nan, 5, 5), "finite number", id="nan"),
    pytest.param(lambda: Box(0, 0, math.inf, 5), "finite number", id="inf"),
    pytest.param(lambda: ImageRecord(1, "a.jpg", -3, 10), "width must be a positive integer", id="negative-width"),
    pytest.param(lambda: ImageRecord(1, "a.jpg", 10, 0), "height must be a positive integer", id="zero-height"),
    pytest.param(lambda: ImageRecord(1, "", 10, 10), "file name", id="no-file-name"),
    pytest.param(lambda: Region("cat", box=Box(0, 0, 1, 1), score=1.5), r"score must be in \[0, 1\]", id="score>1"),
    pytest.param(lambda: Region("cat", box=Box(0, 0, 1, 1), score=-0.1), r"score must be in \[0, 1\]", id="score<0"),
    pytest.param(lambda: Region("cat", box=Box(0, 0, 1, 1), calibrated_score=math.nan), "finite", id="nan-calibrated"),
    pytest.param(lambda: Region("", box=Box(0, 0, 1, 1)), "label must be a non-empty name", id="empty-label"),
    pytest.param(lambda: Region("cat", Shape.POLYGON, points=(((0, 0), (1, 1)),)), "at least 3 points",
                 id="short-polygon"),
    pytest.param(lambda: Region("cat", Shape.MASK), "mask region has no mask", id="mask-without-mask"),
    pytest.param(lambda: Mask.from_coco({"size": [2, 2], "counts": [1, 2]}), "covers 3 pixels", id="short-rle"),
])
def test_invalid_values_raise(make, reason: str) -> None:
    with pytest.raises(AnnotationError, match=reason):
        make()


def test_derived_box_and_rotation_about_centre() -> None:
    region = Region("cat", Shape.POLYGON, points=(((2, 3), (10, 3), (6, 9)),))
    assert region.box == Box(2, 3, 10, 9)
    corners = Box(0, 0, 4, 2, rotation=90).corners()
    np.testing.assert_allclose(corners, [[3, -1], [3, 3], [1, 3], [1, -1]], atol=1e-12)


def test_mask_is_compact_and_decodes_on_demand() -> None:
    bitmap = np.zeros((480, 640), dtype=bool)
    bitmap[100:200, 50:300] = True
    mask = Mask.from_array(bitmap)
    assert len(mask.rle["counts"]) < 1000  # bytes (two runs per column), against 307,200 pixels
    assert np.array_equal(mask.to_array(), bitmap)
    assert mask.bounding_box() == Box(50, 100, 300, 200)
