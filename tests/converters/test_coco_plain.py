"""COCO's plain boxes, checked all at once (`converters.coco_plain`): the same Regions as the full
per-annotation path, and every bad box still fails (or is skipped) with its location."""

from __future__ import annotations

import math

import pytest

from openautoglm.converters import AnnotationError, Box, Region, Shape, coco, coco_plain
from openautoglm.converters.coco_plain import plain_box_regions
from openautoglm.converters.skipping import skipping_invalid
from openautoglm.converters.types import checked_box_region

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}]
IMAGES = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
          {"id": "b", "file_name": "b.jpg", "width": 50, "height": 50}]


def _doc(annotations: list) -> dict:
    return {"categories": CATEGORIES, "images": IMAGES, "annotations": annotations}


MIXED = [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0, "segmentation": []},
    {"id": 2, "image_id": "b", "category_id": 7, "bbox": [0.5, 1.25, 10.0, 0.0]},  # no area: none kept
    {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.4},  # a score: the full path
    {"id": 4, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5], "iscrowd": 1,
     "segmentation": {"size": [80, 100], "counts": [0, 8000]}},
    {"id": 5, "image_id": 1, "category_id": 1, "bbox": [2, 2, 4, 4], "segmentation": [[2, 2, 6, 2, 6, 6]]},
    {"id": 6, "image_id": 1, "category_id": 1, "bbox": [2, 2, 4, 4], "note": "kept as coco.note"},
]


def test_plain_boxes_read_as_the_full_path_reads_them(monkeypatch) -> None:
    fast = coco.parse(_doc(MIXED))
    plain = plain_box_regions(MIXED, {1: 0, "b": 0}, {1: "cat", 7: "dog"})
    assert [region is not None for region in plain] == [True, True, False, False, False, False]
    monkeypatch.setattr(coco, "plain_box_regions", lambda annotations, images, labels: [None] * len(annotations))
    assert coco.parse(_doc(MIXED)) == fast
    (first, third, fourth, fifth, sixth), (second,) = (item.regions for item in fast.items)
    assert first.box.bounds() == (1, 2, 4, 6) and type(first.box.x2) is int and first.attributes == {"coco.area": 12}
    assert second.box.bounds() == (0.5, 1.25, 10.5, 1.25) and second.label == "dog" and second.attributes == {}


@pytest.mark.parametrize("bbox, reason", [
    ([1, 2, -3, 4], "bbox has a negative size"),
    ([1, 2, 3, math.nan], "box coordinate must be a finite number"),  # not plain: the full path refuses it
    ([1, True, 3, 4], "bbox must be [x, y, width, height]"),
    ([1, "2", 3, 4], "bbox must be [x, y, width, height]"),
    ([1, 2, 3], "bbox must be [x, y, width, height]"),
])
def test_a_bad_box_among_plain_ones_fails_with_its_location(bbox, reason) -> None:
    annotations = [dict(MIXED[0]), {"id": 9, "image_id": 1, "category_id": 1, "bbox": bbox}]
    with pytest.raises(AnnotationError) as caught:
        coco.parse(_doc(annotations))
    assert caught.value.where == "annotations[1] (id 9)" and reason in caught.value.reason
    with skipping_invalid() as skipped:
        kept = coco.parse(_doc(annotations))
    assert [r.id for item in kept.items for r in item.regions] == [1] and len(skipped) == 1


def test_unknown_image_or_category_still_named() -> None:
    with pytest.raises(AnnotationError, match="unknown category_id 3"):
        coco.parse(_doc([{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}]))
    with pytest.raises(AnnotationError, match="unknown image_id 'zz'"):
        coco.parse(_doc([{"id": 1, "image_id": "zz", "category_id": 1, "bbox": [1, 2, 3, 4]}]))


def test_a_file_of_plain_boxes_is_checked_by_columns_and_reads_as_one_by_one(monkeypatch) -> None:
    annotations = [{"id": i, "image_id": 1 if i % 2 else "b", "category_id": 7 if i % 3 else 1,
                    "bbox": [i, 2.5, 3, i / 7], "area": 3.0, "iscrowd": 0, "segmentation": []} for i in range(40)]
    assert coco_plain._all_plain(annotations, {1: 0, "b": 0}, {1: "cat", 7: "dog"})
    by_columns = coco.parse(_doc(annotations))
    monkeypatch.setattr(coco_plain, "_all_plain", lambda *args: False)
    assert coco.parse(_doc(annotations)) == by_columns
    monkeypatch.setattr(coco, "plain_box_regions", lambda annotations, images, labels: [None] * len(annotations))
    assert coco.parse(_doc(annotations)) == by_columns
    for odd_one in ({"iscrowd": 1}, {"score": 0.5}, {"category_id": 3}, {"image_id": "zz"}, {"bbox": [1, 2, 3]}):
        changed = annotations[:5] + [{**annotations[5], **odd_one}] + annotations[6:]
        assert not coco_plain._all_plain(changed, {1: 0, "b": 0}, {1: "cat", 7: "dog"}), odd_one


def test_a_checked_box_region_is_the_region_the_constructor_makes() -> None:
    checked = checked_box_region("dog", 1, 2.5, 4, 8.25, "a1", {"coco.area": 3})
    made = Region("dog", box=Box(1, 2.5, 4, 8.25), id="a1", attributes={"coco.area": 3})
    assert checked == made and checked.box == made.box and checked.shape is Shape.BOX
    assert (checked.points, checked.mask, checked.score, checked.keypoints) == ((), None, None, ())
