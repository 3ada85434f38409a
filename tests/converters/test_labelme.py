"""LabelMe JSON (labelme, X-AnyLabeling): every shape type read from a file written as labelme 5
writes it, and a round trip through the writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openautoglm.converters import AnnotationError, Box, Shape, load, save


def test_every_labelme_shape_type_is_read(assets: Path) -> None:
    (item,) = load(assets / "labelme", "labelme").items
    assert (item.image.file_name, item.image.width, item.image.height) == ("images/street.jpg", 40, 32)
    by_label = {r.label: r for r in item.regions}
    assert by_label["car"].shape is Shape.BOX and by_label["car"].box == Box(10, 5.5, 30.5, 20)
    road = by_label["road"]
    assert road.shape is Shape.POLYGON and road.points == (((0, 0), (40, 0), (40, 10)),)
    assert road.attributes == {"description": "wet", "labelme.group_id": 7, "labelme.flags": {"occluded": True}}
    assert by_label["lane"].shape is Shape.POLYLINE and len(by_label["lane"].points[0]) == 3
    assert by_label["pole"].shape is Shape.POLYLINE and by_label["pole"].attributes["labelme.shape_type"] == "line"
    assert by_label["nose"].shape is Shape.POINTS and by_label["nose"].points == (((12, 13),),)
    wheel = by_label["wheel"]  # centre (20, 20), rim (23, 24): radius 5
    assert wheel.shape is Shape.POLYGON and len(wheel.points[0]) == 32
    np.testing.assert_allclose(wheel.box.bounds(), (15, 15, 25, 25), atol=0.1)
    stain = by_label["stain"].mask.to_array()
    assert stain.shape == (32, 40) and {tuple(p) for p in np.argwhere(stain)} == {(1, 2), (2, 3), (3, 5)}
    person = by_label["person"]
    assert person.score == 0.82 and person.attributes == {"difficult": True, "pose": "left"}
    assert [r.label for r in item.regions if r.shape is Shape.TAG] == ["night"]


def test_labelme_round_trip_keeps_every_shape(assets: Path, tmp_path: Path) -> None:
    original = load(assets / "labelme", "labelme")
    save(original, tmp_path / "out", "labelme")
    written = json.loads((tmp_path / "out" / "images" / "street.json").read_text())
    assert written["imagePath"] == "street.jpg" and written["imageData"] is None
    assert [s["shape_type"] for s in written["shapes"]] == ["rectangle", "polygon", "linestrip", "line", "point",
                                                            "circle", "mask", "rectangle"]
    (again,) = load(tmp_path / "out", "labelme").items
    (before,) = original.items
    for a, b in zip(before.regions, again.regions):
        assert (a.label, a.shape, a.score, a.attributes) == (b.label, b.shape, b.score, b.attributes)
        if a.shape is not Shape.TAG:
            np.testing.assert_allclose(a.box.bounds(), b.box.bounds(), atol=1e-6)
        assert a.mask == b.mask
    assert len(before.regions) == len(again.regions)


def test_labelme_from_coco_with_multi_ring_polygons_and_points(tmp_path: Path) -> None:
    from openautoglm.converters import AnnotatedImage, Dataset, ImageRecord, Mask, Region

    bitmap = np.zeros((20, 30), dtype=bool)
    bitmap[2:5, 3:9] = True
    item = AnnotatedImage(ImageRecord(1, "sub/a.png", 30, 20), [
        Region("lake", Shape.POLYGON, points=(((0, 0), (5, 0), (5, 5)), ((10, 10), (15, 10), (15, 15)))),
        Region("eyes", Shape.POINTS, points=(((1, 1), (2, 2)),)),
        Region("blob", Shape.MASK, mask=Mask.from_array(bitmap), score=0.5)])
    Image.new("RGB", (30, 20)).save(tmp_path / "a.png")
    (tmp_path / "images" / "sub").mkdir(parents=True)
    Image.new("RGB", (30, 20)).save(tmp_path / "images" / "sub" / "a.png")
    save(Dataset(items=[item]), tmp_path / "out", "labelme", images_dir=tmp_path / "images")
    assert (tmp_path / "out" / "sub" / "a.png").is_file()  # the image copied beside its JSON
    shapes = json.loads((tmp_path / "out" / "sub" / "a.json").read_text())["shapes"]
    lake = [s for s in shapes if s["label"] == "lake"]
    assert len(lake) == 2 and lake[0]["group_id"] == lake[1]["group_id"] is not None
    (back,) = load(tmp_path / "out", "labelme").items
    assert back.image.file_name == "sub/a.png"
    assert np.array_equal(next(r for r in back.regions if r.label == "blob").mask.to_array(), bitmap)


def test_a_json_that_is_not_labelme_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"images": []}))
    with pytest.raises(AnnotationError, match=r"a.json.*not a LabelMe file"):
        load(tmp_path, "labelme")
    (tmp_path / "a.json").write_text(json.dumps({"shapes": [{"label": "x", "shape_type": "hexagon", "points": []}],
                                                 "imagePath": "a.jpg", "imageWidth": 4, "imageHeight": 4}))
    with pytest.raises(AnnotationError, match=r"shapes\[0\].*unknown shape_type 'hexagon'"):
        load(tmp_path, "labelme")


def test_labelme_without_sizes_measures_the_image(tmp_path: Path) -> None:
    Image.new("RGB", (17, 9)).save(tmp_path / "a.jpg")
    (tmp_path / "a.json").write_text(json.dumps({"shapes": [], "imagePath": "a.jpg"}))
    (item,) = load(tmp_path, "labelme").items
    assert (item.image.width, item.image.height) == (17, 9)
