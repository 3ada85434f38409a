"""The Nuclio dashboard API as CVAT's lambda manager calls it, with a fake pipeline."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from openautoglm.converters.cvat_wire import from_nuclio
from openautoglm.model.inference.clicks import Click
from openautoglm.model.inference.segmenters import GrabCutSegmenter
from tests.backends.conftest import FakePipeline, png_header
from tests.backends.cvat_ui import decode_interactor_answer


class ClosedSetPipeline(FakePipeline):
    vocabulary = ("Cat", "Dog")


class SegmentingPipeline(ClosedSetPipeline):
    segmenter = GrabCutSegmenter()


def _image(width: int = 64, height: int = 48) -> str:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), "black")
    image.paste((255, 255, 255), (16, 12, 48, 36))
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _invoke(client, function: str, body):
    return client.post("/api/function_invocations", json=body, headers={"x-nuclio-function-name": function})


def test_function_list_has_the_pipeline_and_the_segmenter(make_client) -> None:
    client = make_client(ClosedSetPipeline())
    functions = client.get("/api/functions").get_json()
    detector, interactor = functions["openautoglm-yolo"], functions["openautoglm-segmenter"]
    annotations = detector["metadata"]["annotations"]
    assert detector["metadata"]["name"] == "openautoglm-yolo" and detector["spec"]["description"]
    assert annotations["type"] == "detector"
    spec = json.loads(annotations["spec"])
    assert [label["name"] for label in spec] == ["Cat", "Dog"] and all(label["type"] == "rectangle" for label in spec)
    assert spec[0]["attributes"] == [{"name": "confidence", "input_type": "text", "mutable": False, "values": [""]}]
    assert interactor["metadata"]["annotations"]["type"] == "interactor"
    assert interactor["metadata"]["annotations"]["startswith_box_optional"] == "true"
    assert client.get("/api/functions/openautoglm-yolo").get_json() == detector


def test_a_pipeline_that_fails_to_load_hides_no_other(make_client) -> None:
    client = make_client(ClosedSetPipeline(), cvat_pipelines=["no-such-pipeline"])
    assert set(client.get("/api/functions").get_json()) == {"openautoglm-yolo", "openautoglm-segmenter"}


def test_detector_applies_the_threshold_and_keeps_confidence(make_client) -> None:
    client = make_client(ClosedSetPipeline())
    shapes = _invoke(client, "openautoglm-yolo", {"image": _image()}).get_json()
    (shape,) = shapes
    assert shape["label"] == "Cat" and shape["type"] == "rectangle" and shape["points"] == [16, 12, 48, 36]
    assert shape["attributes"] == [{"name": "confidence", "value": "0.8000"}]
    assert _invoke(client, "openautoglm-yolo", {"image": _image(), "threshold": 0.9}).get_json() == []


def test_detector_masks_in_cvat_layout_with_polygon_points(make_client) -> None:
    client = make_client(SegmentingPipeline())
    spec = json.loads(client.get("/api/functions").get_json()["openautoglm-yolo"]["metadata"]["annotations"]["spec"])
    assert spec[0]["type"] == "mask"
    (shape,) = _invoke(client, "openautoglm-yolo", {"image": _image(), "threshold": 0.5}).get_json()
    assert shape["type"] == "mask" and len(shape["points"]) >= 6
    bitmap = from_nuclio(shape["mask"], 64, 48).to_array()
    xtl, ytl, xbr, ybr = shape["mask"][-4:]
    assert bitmap.any() and len(shape["mask"]) - 4 == (xbr - xtl + 1) * (ybr - ytl + 1)


def test_interactor_answers_the_mask_array_cvat_ui_reads(make_client) -> None:
    client = make_client(ClosedSetPipeline())
    answer = _invoke(client, "openautoglm-segmenter", {"image": _image(), "pos_points": [[32, 24]], "neg_points": [],
                                                       "obj_bbox": [[8, 6], [56, 42]]}).get_json()
    bitmap = decode_interactor_answer(answer, 64, 48)
    truth = np.zeros((48, 64), dtype=bool)
    truth[12:36, 16:48] = True  # GrabCut separates the white rectangle from the black background
    assert (bitmap & truth).sum() / (bitmap | truth).sum() > 0.9
    left, top, right, bottom = answer["bounds"]
    assert len(answer["mask"]) == bottom - top + 1 < 48  # cropped, not the whole image
    assert all(left <= x <= right + 1 and top <= y <= bottom + 1 for x, y in answer["points"])
    assert len(answer["points"]) >= 3 and 0 <= answer["score"] <= 1


def test_interactor_click_segments_the_object_a_pipeline_finds_there(make_client) -> None:
    """One click, no box: the prompt is the box of the object found at the click (here the fake's
    detection, the white rectangle), not a fixed margin around the point that would cut it."""
    client = make_client(ClosedSetPipeline())
    answer = _invoke(client, "openautoglm-segmenter", {"image": _image(), "pos_points": [[32, 24]],
                                                       "neg_points": []}).get_json()
    bitmap = decode_interactor_answer(answer, 64, 48)
    truth = np.zeros((48, 64), dtype=bool)
    truth[12:36, 16:48] = True
    assert (bitmap & truth).sum() / (bitmap | truth).sum() > 0.9
    assert answer["score"] == 0.8  # the found object's score, not GrabCut's


def test_interactor_that_finds_nothing_answers_an_empty_mask() -> None:
    from openautoglm.backends.cvat.functions import interactor_answer
    from openautoglm.converters import Box, Mask

    answer = interactor_answer(Mask.from_array(np.zeros((48, 64), dtype=bool)), 0.1, Box(5, 6, 20, 30))
    assert not decode_interactor_answer(answer, 64, 48).any() and answer["points"] == []


def test_function_versions_are_integers_that_follow_the_pipeline_version(make_client) -> None:
    from openautoglm.backends.cvat.functions import function_version

    functions = make_client(ClosedSetPipeline()).get("/api/functions").get_json()
    for function in functions.values():
        int(function["metadata"]["annotations"]["version"])  # what CVAT does; one failure hides every function
    detector = functions["openautoglm-yolo"]
    full = f"{ClosedSetPipeline.version}+calibration-raw"
    assert int(detector["metadata"]["annotations"]["version"]) == function_version(full)
    assert full in detector["spec"]["description"]
    assert function_version("yolo+yolov8n@c8c5ea2b540c+calibration-raw") != \
        function_version("yolo+yolov8n@c8c5ea2b540c+calibration-1a2b3c")


@pytest.mark.parametrize("function, body, status, reason", [
    pytest.param("openautoglm-yolo", {}, 400, "missing 'image'", id="no-image"),
    pytest.param("openautoglm-yolo", {"image": "%%%not base64"}, 400, "not valid base64", id="bad-base64"),
    pytest.param("openautoglm-yolo", {"image": base64.b64encode(b"plain text").decode()}, 400,
                 "does not decode to an image", id="not-an-image"),
    pytest.param("openautoglm-yolo", {"image": base64.b64encode(png_header(13000, 13000)).decode()}, 413,
                 "over the limit of 100,000,000 (OPENAUTOGLM_MAX_PIXELS)", id="pixel-bomb"),
    pytest.param("openautoglm-nope", {"image": _image()}, 404, "no function 'openautoglm-nope'", id="unknown-function"),
    pytest.param("openautoglm-yolo", {"image": _image(), "threshold": 3}, 400, "'threshold' must be",
                 id="bad-threshold"),
    pytest.param("openautoglm-segmenter", {"image": _image(), "pos_points": []}, 400, "needs obj_bbox",
                 id="interactor-without-prompt"),
])
def test_malformed_invocations(make_client, function: str, body: dict, status: int, reason: str) -> None:
    client = make_client(ClosedSetPipeline())
    response = _invoke(client, function, body)
    assert response.status_code == status and reason in response.get_json()["error"]
    assert client.get("/api/functions").status_code == 200  # still serving


def test_wrong_method_and_missing_header(make_client) -> None:
    client = make_client(ClosedSetPipeline())
    assert client.get("/api/function_invocations").status_code == 405
    response = client.post("/api/function_invocations", json={"image": _image()})
    assert response.status_code == 400 and "x-nuclio-function-name" in response.get_json()["error"]
    assert client.get("/api/functions/openautoglm-nope").status_code == 404


def test_real_yolov8n_on_bus_through_function_invocations(make_client, shared, bus, monkeypatch) -> None:
    from openautoglm.model.inference.pipeline import Pipeline

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    client = make_client(Pipeline.load("yolo"))
    labels = json.loads(client.get("/api/functions/openautoglm-yolo").get_json()["metadata"]["annotations"]["spec"])
    assert len(labels) == 80 and labels[0]["name"] == "person"  # COCO's names, as CVAT task labels match them
    buffer = io.BytesIO()
    bus.save(buffer, "JPEG")
    shapes = _invoke(client, "openautoglm-yolo",
                     {"image": base64.b64encode(buffer.getvalue()).decode(), "threshold": 0.5}).get_json()
    found = [shape["label"] for shape in shapes]
    assert found.count("bus") == 1 and found.count("person") >= 3
    for shape in shapes:
        x1, y1, x2, y2 = shape["points"]
        assert shape["type"] == "rectangle" and 0 <= x1 < x2 <= bus.width and 0 <= y1 < y2 <= bus.height
        assert float(shape["attributes"][0]["value"]) >= 0.5


def test_interactor_click_reuses_the_mask_the_finder_made_with_the_same_segmenter(make_client, monkeypatch) -> None:
    """A finder with the interactor's own segmenter masked its find already: that mask is the
    answer, not a second segmentation of the same box."""
    pipeline = SegmentingPipeline()
    segmented = []
    monkeypatch.setattr(pipeline.segmenter, "segment", lambda image, boxes: segmented.append(boxes) or [])
    answer = _invoke(make_client(pipeline), "openautoglm-segmenter", {"image": _image(), "pos_points": [[32, 24]],
                                                                    "neg_points": []}).get_json()
    (found,) = pipeline.objects_at(Image.open(io.BytesIO(base64.b64decode(_image()))), [Click(32, 24)], ["Cat"])
    assert segmented == [] and answer["score"] == 0.8
    assert (decode_interactor_answer(answer, 64, 48) == found.mask.to_array()).all()
