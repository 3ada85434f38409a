"""Comparing two datasets the way a round trip must preserve them."""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from openautoglm.converters import Dataset, Region, Shape


def _key(region: Region) -> tuple:
    corners = region.box.corners() if region.box is not None else np.zeros((4, 2))
    return (region.label, region.shape.value, tuple(np.round(corners.min(axis=0), 2)),
            tuple(np.round(corners.max(axis=0), 2)))


def by_image(dataset: Dataset) -> dict[str, list[Region]]:
    return {PurePosixPath(item.image.file_name).name: sorted(item.regions, key=_key) for item in dataset.items}


def assert_equivalent(expected: Dataset, actual: Dataset, tolerance: float = 1e-6, compare_scores: bool = False,
                      shape_map: dict[Shape, Shape] | None = None) -> None:
    shape_map = shape_map or {}
    want, got = by_image(expected), by_image(actual)
    assert sorted(got) == sorted(want), "image file names differ"
    sizes = {PurePosixPath(i.image.file_name).name: (i.image.width, i.image.height) for i in actual.items}
    for item in expected.items:
        name = PurePosixPath(item.image.file_name).name
        assert sizes[name] == (item.image.width, item.image.height), f"{name}: image size"
        a_regions, b_regions = want[name], got[name]
        assert len(b_regions) == len(a_regions), f"{name}: {len(a_regions)} regions became {len(b_regions)}"
        for a, b in zip(a_regions, b_regions):
            where = f"{name}: {a.label} {a.shape.value}"
            assert b.label == a.label, where
            assert b.shape == shape_map.get(a.shape, a.shape), where
            if a.shape is not Shape.TAG:
                np.testing.assert_allclose(_corners(b), _corners(a), atol=tolerance, err_msg=where)
            if a.shape in (Shape.POLYGON, Shape.POLYLINE, Shape.POINTS) and b.shape == a.shape:
                for ring_a, ring_b in zip(a.points, b.points, strict=True):
                    np.testing.assert_allclose(ring_b, ring_a, atol=tolerance, err_msg=where)
            if a.mask is not None:
                assert b.mask is not None and np.array_equal(b.mask.to_array(), a.mask.to_array()), f"{where}: mask"
            if compare_scores:
                assert b.score == a.score or abs(b.score - a.score) < 1e-12, f"{where}: score"


def _corners(region: Region) -> np.ndarray:
    """Rotation-independent comparison: corners sorted, so 90-degree-equivalent boxes compare equal."""
    return np.array(sorted(map(tuple, np.round(region.box.corners(), 9))))
