"""Golden tests: tiny assets with each format's quirks on purpose, expected values written from
each format's specification (tests/assets/<format>/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openautoglm.converters import AnnotationError, Box, Shape, load, save


def _regions(dataset, file_name):
    return next(item for item in dataset.items if item.image.file_name == file_name).regions


def test_coco_quirks(assets: Path, tmp_path: Path) -> None:
    source = assets / "coco" / "instances.json"
    dataset = load(source, "coco")
    assert [(c.id, c.name) for c in dataset.categories] == [(1, "cat"), (2, "dog"), (4, "traffic light")]
    assert [i.image.id for i in dataset.items] == [7, 42]
    light, crowd, tiny = _regions(dataset, "a.png")
    assert light.label == "traffic light" and light.shape is Shape.POLYGON and len(light.points) == 2
    assert light.box == Box(1.5, 2.25, 11.5, 10.25)
    assert light.attributes["coco.custom"] == {"reviewed": True}
    assert crowd.shape is Shape.MASK and crowd.attributes["iscrowd"] == 1
    expected = np.zeros((30, 40), dtype=bool)
    expected[5:10, 20:30] = True
    assert np.array_equal(crowd.mask.to_array(), expected)
    uncompressed = np.zeros((30, 40), dtype=bool)
    uncompressed[0, 0:2] = True  # column-major counts [0, 1, 29, 1, ...]: pixels (0, 0) and (1, 0)
    assert np.array_equal(tiny.mask.to_array(), uncompressed)
    assert _regions(dataset, "b.png")[0].score == 0.75

    save(dataset, tmp_path / "out.json", "coco")
    original, written = json.loads(source.read_text()), json.loads((tmp_path / "out.json").read_text())
    assert written["info"] == original["info"] and written["licenses"] == original["licenses"]
    assert written["categories"] == original["categories"]
    assert written["images"] == original["images"]
    by_id = {a["id"]: a for a in written["annotations"]}
    for annotation in original["annotations"]:
        got = by_id[annotation["id"]]
        for key in ("image_id", "category_id", "bbox", "area", "iscrowd", "custom", "score"):
            assert got.get(key) == annotation.get(key), (annotation["id"], key)
        if isinstance(annotation["segmentation"], list):
            assert got["segmentation"] == annotation["segmentation"]


def test_coco_image_score_is_the_task_score_and_round_trips(tmp_path: Path) -> None:
    from openautoglm.converters import AnnotatedImage, Dataset, ImageRecord, Region

    item = AnnotatedImage(ImageRecord(3, "a.jpg", 20, 10), [Region("cat", Shape.BOX, Box(1, 1, 5, 5), score=0.9)], 0.37)
    plain = AnnotatedImage(ImageRecord(4, "b.jpg", 20, 10))
    save(Dataset(items=[item, plain]), tmp_path / "out.json", "coco")
    images = json.loads((tmp_path / "out.json").read_text())["images"]
    assert images[0]["score"] == 0.37 and "score" not in images[1]
    again = load(tmp_path / "out.json", "coco").items
    assert [i.score for i in again] == [0.37, None] and "score" not in again[0].image.attributes


def test_voc_one_based_inclusive_and_flags(assets: Path) -> None:
    dataset = load(assets / "voc", "voc")
    assert dataset.label_names == ["dog", "cat"]  # labels.txt order
    cat, dog = _regions(dataset, "a.png")
    assert cat.box == Box(0, 0, 10, 20)  # xmin=1 is pixel 0; xmax=10 inclusive ends at edge 10
    assert cat.attributes == {"truncated": True, "pose": "Left"}
    assert dog.box == Box(11.5, 2, 30, 30)
    assert dog.attributes == {"difficult": True, "occluded": True, "color": "brown"}


def test_voc_zero_based_option(assets: Path) -> None:
    cat, _ = _regions(load(assets / "voc", "voc", zero_based=True), "a.png")
    assert cat.box == Box(1, 1, 10, 20)


def _voc_xml(name: str, size: str) -> str:
    return (f"<annotation><filename>{name}</filename>{size}<object><name>cat</name><bndbox><xmin>2</xmin>"
            "<ymin>3</ymin><xmax>10</xmax><ymax>12</ymax></bndbox></object></annotation>")


def test_voc_without_size_measures_the_image_and_names_it_when_missing(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(_voc_xml("a.jpg",
                                                             "<size><width>40</width><height>30</height></size>"))
    (tmp_path / "Annotations" / "b.xml").write_text(_voc_xml("b.jpg", ""))  # no <size>
    (tmp_path / "Annotations" / "c.xml").write_text(_voc_xml("c.jpg",
                                                             "<size><width>0</width><height>0</height></size>"))
    Image.new("RGB", (64, 48)).save(tmp_path / "JPEGImages" / "b.jpg")
    Image.new("RGB", (20, 10)).save(tmp_path / "JPEGImages" / "c.jpg")
    sizes = {i.image.file_name: (i.image.width, i.image.height) for i in load(tmp_path, "voc").items}
    assert sizes == {"a.jpg": (40, 30), "b.jpg": (64, 48), "c.jpg": (20, 10)}
    (tmp_path / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(AnnotationError, match=r"b.xml.*missing <size>, and the image b.jpg is not in"):
        load(tmp_path, "voc")


def test_voc_rgb_instance_png_reads_as_the_palette_one(tmp_path: Path) -> None:
    from PIL import Image

    from openautoglm.converters.voc import _voc_colours

    (tmp_path / "Annotations").mkdir()
    (tmp_path / "SegmentationObject").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(_voc_xml("a.jpg",
                                                             "<size><width>40</width><height>30</height></size>"))
    indices = np.zeros((30, 40), dtype=np.uint8)
    indices[5:10, 3:9] = 1
    indices[0:2, 0:2] = 255  # the devkit's "void" border value
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette(_voc_colours().tobytes())
    palette.convert("RGB").save(tmp_path / "SegmentationObject" / "a.png")
    (cat,) = load(tmp_path, "voc").items[0].regions
    assert cat.shape is Shape.MASK and np.array_equal(cat.mask.to_array(), indices == 1)
    assert tuple(_voc_colours()[1]) == (128, 0, 0) and tuple(_voc_colours()[255]) == (224, 224, 192)
    Image.new("RGB", (40, 30), (1, 2, 3)).save(tmp_path / "SegmentationObject" / "a.png")
    with pytest.raises(AnnotationError, match=r"a.png.*outside the VOC colour map: #010203"):
        load(tmp_path, "voc")


def test_voc_parts_are_read_with_their_object_and_written_back_inside_it(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    person = ("<object><name>person</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>60</ymax></bndbox>"
              "<part><name>head</name><bndbox><xmin>10</xmin><ymin>6</ymin><xmax>20</xmax><ymax>16</ymax></bndbox></part>"
              "<part><name>hand</name><bndbox><xmin>25</xmin><ymin>30</ymin><xmax>29</xmax><ymax>34</ymax></bndbox>"
              "</part></object>")
    (tmp_path / "Annotations" / "a.xml").write_text(_voc_xml("a.jpg",
                                                             "<size><width>40</width><height>70</height></size>")
                                                    .replace("</annotation>", person + "</annotation>"))
    regions = load(tmp_path, "voc").items[0].regions
    assert [(r.label, r.attributes.get("voc.part_of")) for r in regions] == [
        ("cat", None), ("person", None), ("head", 2), ("hand", 2)]
    assert regions[2].box == Box(9, 5, 20, 16)
    save(load(tmp_path, "voc"), tmp_path / "out", "voc")
    written = (tmp_path / "out" / "Annotations" / "a.xml").read_text()
    assert written.count("<object>") == 2 and written.count("<part>") == 2
    again = load(tmp_path / "out", "voc").items[0].regions
    assert [(r.label, r.box, r.attributes.get("voc.part_of")) for r in again] == [
        (r.label, r.box, r.attributes.get("voc.part_of")) for r in regions]


def test_voc_writes_one_based(assets: Path, tmp_path: Path) -> None:
    save(load(assets / "voc", "voc"), tmp_path / "out", "voc")
    text = (tmp_path / "out" / "Annotations" / "a.xml").read_text()
    assert "<xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax>" in text
    assert "<difficult>1</difficult>" in text and "<name>color</name><value>brown</value>" in text


def test_yolo_ultralytics_layout(assets: Path) -> None:
    dataset = load(assets / "yolo_ultralytics", "yolo")
    assert dataset.label_names == ["cat", "traffic light"]
    box, polygon, scored = _regions(dataset, "a.png")
    assert box.label == "traffic light" and box.box == Box(80, 30, 120, 70)
    assert polygon.shape is Shape.POLYGON
    np.testing.assert_allclose(polygon.points[0], [(20, 10), (60, 10), (60, 50)])
    assert scored.score == 0.9 and scored.box == Box(40, 70, 60, 80)


def test_yolo_darknet_layout(assets: Path) -> None:
    dataset = load(assets / "yolo_darknet", "yolo")
    assert dataset.label_names == ["car", "bus"]
    (bus,) = _regions(dataset, "b.jpg")
    assert bus.label == "bus" and bus.box == Box(15, 10, 35, 30)


def test_yolo_oriented_boxes(assets: Path, tmp_path: Path) -> None:
    dataset = load(assets / "yolo_obb", "yolo")
    (plane,) = _regions(dataset, "c.png")
    assert plane.box.center == pytest.approx((50, 50))
    assert (plane.box.width, plane.box.height, plane.box.rotation) == pytest.approx((20, 10, 90))
    save(dataset, tmp_path / "out", "yolo")
    assert "task: obb" in (tmp_path / "out" / "data.yaml").read_text()
    values = [float(v) for v in (tmp_path / "out/labels/train/c.txt").read_text().split()[1:]]
    np.testing.assert_allclose(values, [0.55, 0.4, 0.55, 0.6, 0.45, 0.6, 0.45, 0.4], atol=1e-12)


def test_label_studio_quirks(assets: Path) -> None:
    dataset = load(assets / "label_studio" / "tasks.json", "label_studio")
    (item,) = dataset.items
    assert item.image.id == 101 and (item.image.width, item.image.height) == (200, 100)
    assert item.image.attributes["label_studio.data"] == {"caption": "kept"}
    rect, polygon, keypoint, tag, brush = item.regions  # the textarea is not an object
    # x=10%, y=20% of 200x100 is the pivot (20, 20); 40x10 rotated 90 degrees about it: centre (15, 40)
    assert rect.box.center == pytest.approx((15, 40)) and rect.box.rotation == 90
    np.testing.assert_allclose(rect.box.corners()[0], (20, 20), atol=1e-9)
    assert rect.source == "human" and rect.score is None
    np.testing.assert_allclose(polygon.points[0], [(20, 10), (40, 10), (40, 50)])
    assert keypoint.shape is Shape.POINTS and keypoint.points == (((100.0, 50.0),),)
    assert tag.shape is Shape.TAG and tag.label == "indoor"
    expected = np.zeros((10, 20), dtype=bool)
    expected[2:4, 5:9] = True
    assert brush.shape is Shape.MASK and np.array_equal(brush.mask.to_array(), expected)
    assert (brush.source, brush.score, item.score) == ("yolov8n@1", 0.8, 0.61)


def test_label_studio_writes_predictions_and_annotations(assets: Path, tmp_path: Path) -> None:
    source = assets / "label_studio" / "tasks.json"
    save(load(source, "label_studio"), tmp_path / "out.json", "label_studio")
    (task,) = json.loads((tmp_path / "out.json").read_text())
    (original,) = json.loads(source.read_text())
    assert task["data"] == original["data"]
    (prediction,) = task["predictions"]
    assert (prediction["model_version"], prediction["score"]) == ("yolov8n@1", 0.61)
    assert prediction["result"][0]["value"]["rle"] == original["predictions"][0]["result"][0]["value"]["rle"]
    written = task["annotations"][0]["result"][0]["value"]
    want = original["annotations"][0]["result"][0]["value"]
    assert written["rectanglelabels"] == want["rectanglelabels"]
    for key in ("x", "y", "width", "height", "rotation"):
        assert written[key] == pytest.approx(want[key], abs=1e-9), key


def test_cvat_quirks(assets: Path) -> None:
    dataset = load(assets / "cvat" / "annotations.xml", "cvat")
    assert dataset.label_names == ["car", "road", "lane", "wheel", "spot", "night"]
    (item,) = dataset.items
    assert (item.image.id, item.image.file_name, item.image.width, item.image.height) == (5, "frame_000005.jpg", 10, 8)
    box, polygon, polyline, points, mask, tag = item.regions
    assert box.box == Box(1, 2, 7, 6, 45)  # CVAT rotates about the centre, as the canonical type
    assert box.attributes == {"color": "red", "parked": True, "occluded": True, "z_order": 2}
    assert polygon.source == "auto" and polygon.points == (((0.0, 0.0), (5.0, 0.0), (5.0, 5.0)),)
    assert polyline.shape is Shape.POLYLINE and points.shape is Shape.POINTS and len(points.points[0]) == 2
    expected = np.zeros((8, 10), dtype=bool)
    expected[3, 3:5] = True  # rle "1, 2, 3" over the 3x2 crop at (2, 3): 0 1 1 / 0 0 0
    assert mask.source == "semi-auto" and np.array_equal(mask.mask.to_array(), expected)
    assert tag.shape is Shape.TAG and tag.label == "night"


def test_cvat_round_trip_is_stable(assets: Path, tmp_path: Path) -> None:
    dataset = load(assets / "cvat" / "annotations.xml", "cvat")
    save(dataset, tmp_path / "a.xml", "cvat")
    save(load(tmp_path / "a.xml", "cvat"), tmp_path / "b.xml", "cvat")
    text = (tmp_path / "a.xml").read_text()
    assert text == (tmp_path / "b.xml").read_text()
    # the mask is written over its tight box, as CVAT itself does
    assert 'rotation="45.0"' in text and 'rle="0, 2" left="3" top="3" width="2" height="1"' in text


def test_a_zero_based_voc_file_read_as_one_based_is_an_error_not_minus_one(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.png</filename><size><width>40</width><height>30</height><depth>3</depth></size>"
        "<object><name>cat</name><bndbox><xmin>0</xmin><ymin>4</ymin><xmax>10</xmax><ymax>12</ymax></bndbox>"
        "</object></annotation>")
    with pytest.raises(AnnotationError, match=r"a\.xml.*0-based export.*--voc-zero-based"):
        load(tmp_path, "voc")
    (cat,) = load(tmp_path, "voc", zero_based=True).items[0].regions
    assert cat.box.bounds() == (0, 4, 10, 12)


VIDEO = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><id>3</id><size>4</size><mode>interpolation</mode>
    <original_size><width>64</width><height>48</height></original_size>
    <labels><label><name>car</name></label><label><name>person</name></label><label><name>rainy</name></label></labels>
  </task></meta>
  <track id="0" label="car" source="manual">
    <box frame="0" keyframe="1" outside="0" occluded="0" xtl="1" ytl="2" xbr="11" ybr="12" z_order="0">
      <attribute name="parked">true</attribute></box>
    <box frame="1" keyframe="0" outside="0" occluded="1" xtl="2" ytl="2" xbr="12" ybr="12" z_order="0">
      <attribute name="parked">true</attribute></box>
    <box frame="2" keyframe="1" outside="1" occluded="0" xtl="3" ytl="2" xbr="13" ybr="12" z_order="0"/>
  </track>
  <track id="5" label="person" source="auto">
    <points frame="1" keyframe="1" outside="0" occluded="0" points="5,6;7,8" z_order="0"/>
  </track>
  <tag frame="3" label="rainy" source="manual"/>
</annotations>
"""


def test_cvat_for_video_reads_one_image_per_frame_with_track_ids(tmp_path: Path) -> None:
    (tmp_path / "annotations.xml").write_text(VIDEO)
    dataset = load(tmp_path / "annotations.xml", "cvat")
    assert [(i.image.file_name, i.image.width, i.image.height) for i in dataset.items] == [
        (f"frame_{n:06d}.PNG", 64, 48) for n in range(4)]
    frames = [[(r.label, r.shape, r.attributes.get("cvat.track_id")) for r in i.regions] for i in dataset.items]
    assert frames == [[("car", Shape.BOX, 0)], [("car", Shape.BOX, 0), ("person", Shape.POINTS, 5)], [],
                      [("rainy", Shape.TAG, None)]]
    car = dataset.items[1].regions[0]
    assert car.box == Box(2, 2, 12, 12) and car.attributes["occluded"] is True and car.attributes["parked"] is True
    assert dataset.items[1].regions[1].source == "auto"
    (tmp_path / "broken.xml").write_text(VIDEO.replace('<original_size><width>64</width><height>48</height>'
                                                       '</original_size>', ""))
    with pytest.raises(AnnotationError, match="original_size"):
        load(tmp_path / "broken.xml", "cvat")


def test_cvat_for_video_cut_from_a_start_frame_with_a_step_numbers_frames_as_cvat_does(tmp_path: Path) -> None:
    """CVAT writes the video's frame numbers (start_frame + i * step) in the shapes and in the names
    of the frames it exports; the empty frames in between are numbered the same way."""
    cut = VIDEO.replace("<size>4</size>", "<size>4</size><start_frame>10</start_frame><stop_frame>16</stop_frame>"
                        "<frame_filter>step=2</frame_filter>")
    for old, new in (('frame="0"', 'frame="10"'), ('frame="1"', 'frame="12"'), ('frame="2"', 'frame="14"'),
                     ('frame="3"', 'frame="16"')):
        cut = cut.replace(old, new)
    (tmp_path / "annotations.xml").write_text(cut)
    dataset = load(tmp_path / "annotations.xml", "cvat")
    assert [i.image.file_name for i in dataset.items] == [f"frame_{n:06d}.PNG" for n in (10, 12, 14, 16)]
    assert [len(i.regions) for i in dataset.items] == [1, 2, 0, 1]


def test_coco_keypoints_survive_beside_a_segmentation_with_their_indices(tmp_path: Path) -> None:
    """A person_keypoints file: every annotation has a polygon and 17 keypoints, some with v=0."""
    keypoints = [0] * 51
    keypoints[0:3], keypoints[15:18], keypoints[48:51] = [10, 12, 2], [14, 20, 1], [18, 40, 2]
    doc = {"images": [{"id": 1, "file_name": "p.jpg", "width": 50, "height": 60}],
           "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)],
                           "skeleton": [[1, 2], [2, 3]]}],
           "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 40], "iscrowd": 0,
                            "area": 800, "segmentation": [[5, 5, 25, 5, 25, 45, 5, 45]], "keypoints": keypoints,
                            "num_keypoints": 3}]}
    (tmp_path / "in.json").write_text(json.dumps(doc))
    dataset = load(tmp_path / "in.json", "coco")
    (region,) = dataset.items[0].regions
    assert region.shape is Shape.POLYGON and len(region.keypoints) == 17
    assert region.keypoints[5] == (14, 20, 1) and region.keypoints[1] == (0, 0, 0)
    save(dataset, tmp_path / "out.json", "coco")
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["annotations"][0]["keypoints"] == keypoints and written["annotations"][0]["num_keypoints"] == 3
    assert written["categories"] == doc["categories"]
    doc["annotations"][0]["keypoints"] = [1, 2]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"annotations\[0\].*keypoints must be a flat list"):
        load(tmp_path / "bad.json", "coco")


def _person_keypoints() -> dict:
    """One person with 17 keypoints: 0 visible, 5 labelled but hidden, 16 visible, the rest unlabelled."""
    keypoints = [0] * 51
    keypoints[0:3], keypoints[15:18], keypoints[48:51] = [10, 12, 2], [14, 20, 1], [18, 40, 2]
    return {"images": [{"id": 1, "file_name": "p.jpg", "width": 50, "height": 60}],
            "categories": [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)]}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 40], "iscrowd": 0,
                             "area": 800, "segmentation": [], "keypoints": keypoints, "num_keypoints": 3,
                             "score": 0.9}]}


def test_label_studio_keeps_an_objects_keypoints_grouped_under_it(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps(_person_keypoints()))
    (person,) = load(tmp_path / "in.json", "coco").items[0].regions
    save(load(tmp_path / "in.json", "coco"), tmp_path / "ls.json", "label_studio")
    (task,) = json.loads((tmp_path / "ls.json").read_text())
    results = task["predictions"][0]["result"]
    box, *points = results
    assert box["type"] == "rectanglelabels" and len(points) == 3  # the unlabelled keypoints are not written
    assert {p["parentID"] for p in points} == {box["id"]} and [p["id"][-4:] for p in points] == ["_kp0", "_kp5",
                                                                                                    "kp16"]
    assert [p["value"]["visibility"] for p in points] == [2, 1, 2]
    (back,) = load(tmp_path / "ls.json", "label_studio").items[0].regions
    assert back.shape is Shape.BOX and back.box == pytest.approx(person.box)
    assert len(back.keypoints) == 17
    np.testing.assert_allclose(np.array(back.keypoints), np.array(person.keypoints), atol=1e-9)
    # a keypoint whose parent is not in the result stays a point of its own, and a bad visibility is named
    points[0]["parentID"] = "elsewhere"
    task["predictions"][0]["result"] = [box, *points]
    (tmp_path / "orphan.json").write_text(json.dumps([task]))
    regions = load(tmp_path / "orphan.json", "label_studio").items[0].regions
    assert [r.shape for r in regions] == [Shape.BOX, Shape.POINTS] and regions[0].keypoints[0] == (0, 0, 0)
    points[1]["value"]["visibility"] = 7
    (tmp_path / "bad.json").write_text(json.dumps([task]))
    with pytest.raises(AnnotationError, match=r"predictions\[0\]\.result\[2\].*visibility must be 1 or 2"):
        load(tmp_path / "bad.json", "label_studio")


CVAT_SKELETON = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
<meta><task><labels>
<label><name>hand</name><type>skeleton</type><attributes></attributes><svg>&lt;line x1="1"/&gt;</svg></label>
<label><name>wrist</name><type>points</type><attributes></attributes><parent>hand</parent></label>
<label><name>thumb</name><type>points</type><attributes></attributes><parent>hand</parent></label>
<label><name>index</name><type>points</type><attributes></attributes><parent>hand</parent></label>
<label><name>cup</name><type>rectangle</type><attributes></attributes></label>
</labels></task></meta>
<image id="0" name="a.jpg" width="64" height="48">
  <box label="cup" source="manual" occluded="0" xtl="1" ytl="2" xbr="9" ybr="12" z_order="0"></box>
  <skeleton label="hand" source="manual" z_order="0">
    <points label="thumb" source="manual" outside="0" occluded="1" points="20.5,30"></points>
    <points label="wrist" source="manual" outside="0" occluded="0" points="10,40"></points>
    <points label="index" source="manual" outside="1" occluded="0" points="0,0"></points>
  </skeleton>
</image>
</annotations>
"""


def test_cvat_skeletons_read_as_keypoints_in_their_sublabel_order(tmp_path: Path) -> None:
    (tmp_path / "skeleton.xml").write_text(CVAT_SKELETON)
    dataset = load(tmp_path / "skeleton.xml", "cvat")
    assert dataset.label_names == ["hand", "cup"]  # the sublabels are keypoint names, not objects
    assert dataset.categories[0].attributes["keypoints"] == ["wrist", "thumb", "index"]
    cup, hand = dataset.items[0].regions
    assert cup.label == "cup" and not cup.keypoints
    assert hand.shape is Shape.BOX and hand.keypoints == ((10, 40, 2), (20.5, 30, 1), (0, 0, 0))
    assert hand.box == Box(10, 30, 20.5, 40)  # around the labelled points
    save(dataset, tmp_path / "out.json", "coco")
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["categories"][0]["keypoints"] == ["wrist", "thumb", "index"]
    assert written["annotations"][1]["keypoints"] == [10, 40, 2, 20.5, 30, 1, 0, 0, 0]


@pytest.mark.parametrize("segmentation", [[], [[5, 5, 25, 5, 25, 45, 5, 45]]], ids=["keypoints-alone", "polygon"])
def test_coco_keypoints_round_trip_through_cvat_skeletons(tmp_path: Path, segmentation) -> None:
    doc = _person_keypoints()
    doc["annotations"][0]["segmentation"] = segmentation
    doc["annotations"][0].pop("score")
    (tmp_path / "in.json").write_text(json.dumps(doc))
    save(load(tmp_path / "in.json", "coco"), tmp_path / "out.xml", "cvat")
    text = (tmp_path / "out.xml").read_text()
    assert text.count("<skeleton ") == 1 and text.count("<points ") == 17 and "<parent>person</parent>" in text
    (region,) = load(tmp_path / "out.xml", "cvat").items[0].regions  # the shape and its skeleton: one object
    assert region.shape is (Shape.POLYGON if segmentation else Shape.BOX) and len(region.keypoints) == 17
    save(load(tmp_path / "out.xml", "cvat"), tmp_path / "back.json", "coco")
    (back,) = json.loads((tmp_path / "back.json").read_text())["annotations"]
    original = doc["annotations"][0]
    assert back["keypoints"] == original["keypoints"] and back["num_keypoints"] == 3
    assert back["bbox"] == original["bbox"] and back["segmentation"] == segmentation
    assert json.loads((tmp_path / "back.json").read_text())["categories"][0]["keypoints"] == [f"k{i}" for i in
                                                                                              range(17)]


@pytest.mark.parametrize("attributes", [{}, {"info": {"year": 2026}, "licenses": []}], ids=["bare", "with-info"])
def test_streamed_writes_equal_the_whole_document(tmp_path: Path, attributes) -> None:
    """COCO and Label Studio files are written object by object; the bytes are those of the whole
    document dumped at once (ids renumbered the same way, keys in the same order)."""
    from openautoglm.converters import Category, Dataset, Mask, Region, coco, label_studio
    from openautoglm.converters.types import AnnotatedImage, ImageRecord

    bitmap = np.zeros((30, 40), dtype=bool)
    bitmap[5:20, 10:30] = True
    items = [AnnotatedImage(ImageRecord(7, "a.jpg", 40, 30), [
        Region("cat", Shape.BOX, Box(1, 2, 10, 20), score=0.5, id=3),
        Region("dog", Shape.MASK, mask=Mask.from_array(bitmap), id=3),
        Region("cat", Shape.TAG), Region("bird", Shape.POLYGON, points=(((1, 1), (9, 1), (5, 8)),))], score=0.4),
        AnnotatedImage(ImageRecord(None, "ü.jpg", 40, 30)), AnnotatedImage(ImageRecord(7, "c.jpg", 40, 30),
                                                                          [Region("cat", Shape.BOX, Box(0, 0, 1, 1))])]
    dataset = Dataset([Category("dog", 18, {"supercategory": "animal"})], items, attributes)
    for name, whole in (("coco", coco.dump(dataset)), ("label_studio", label_studio.dump(dataset))):
        save(dataset, tmp_path / f"{name}.json", name)
        expected = json.dumps(whole, ensure_ascii=False, separators=(",", ":"))
        assert (tmp_path / f"{name}.json").read_text(encoding="utf-8") == expected
    save(Dataset(), tmp_path / "empty.json", "coco")
    assert json.loads((tmp_path / "empty.json").read_text()) == {"categories": [], "images": [], "annotations": []}
