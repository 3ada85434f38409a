"""The two real detectors in ../shared/models through their proposers (YOLOv8n both through
LiteRT directly, as the pipelines run it, and through ultralytics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openautoglm.converters import Region
from openautoglm.model.inference.pipeline import Pipeline


@pytest.fixture(scope="module")
def yolov8n(models: Path):
    from openautoglm.model.inference.litert_yolo import LiteRtYoloProposer

    return LiteRtYoloProposer("yolov8n", str(models / "yolov8n-coco" / "yolov8n_int8.tflite"))


@pytest.fixture(scope="module")
def yolov8n_ultralytics(models: Path):
    from openautoglm.model.inference.ultralytics_yolo import UltralyticsProposer

    return UltralyticsProposer("yolov8n", str(models / "yolov8n-coco" / "yolov8n_int8.tflite"))


@pytest.fixture(scope="module")
def yolox(models: Path):
    from openautoglm.model.inference.yolox import YoloxProposer

    return YoloxProposer("yolox-nano", str(models / "yolox-nano-coco" / "yolox_nano.onnx"))


@pytest.mark.parametrize("name", ["yolov8n", "yolov8n_ultralytics", "yolox"])
def test_finds_the_bus_and_people(request, bus, name: str) -> None:
    proposer = request.getfixturevalue(name)
    (regions,) = proposer.propose([bus], [])
    labels = [r.label for r in regions if r.score >= 0.5]
    assert labels.count("bus") == 1 and labels.count("person") >= 3, labels
    width, height = bus.size
    for region in regions:
        assert 0 <= region.box.x1 < region.box.x2 <= width and 0 <= region.box.y1 < region.box.y2 <= height
        assert 0 <= region.score <= 1 and region.source == proposer.spec.source


@pytest.mark.parametrize("name", ["yolov8n", "yolov8n_ultralytics", "yolox"])
def test_batch_equals_loop(request, bus, name: str) -> None:
    proposer = request.getfixturevalue(name)
    small = bus.resize((bus.width // 2, bus.height // 2))
    batch = proposer.propose([bus, small], ["person", "bus"])
    loop = [proposer.propose([image], ["person", "bus"])[0] for image in (bus, small)]
    for got, want in zip(batch, loop):
        assert [r.label for r in got] == [r.label for r in want]
        for mine, reference in zip(got, want):  # tolerances, not rounding: a value near a rounding edge would flip
            assert mine.score == pytest.approx(reference.score, abs=1e-5)
            assert mine.box.bounds() == pytest.approx(reference.box.bounds(), abs=0.01)


@pytest.mark.slow
def test_litert_yolov8n_gives_ultralytics_boxes_on_coco128(shared: Path, models: Path, monkeypatch) -> None:
    """The torch-free path is ultralytics' own result: same detections, boxes within 0.01 px.

    torchvision's NMS sorts scores with torch's unstable sort, whose order of equal scores can
    change with the CPU; ours takes them in anchor order. For the comparison ultralytics' NMS gets
    the scores' stable ranks instead, so both sides order ties alike and every other decision
    (every IoU, in float32 of class-shifted boxes) is compared exactly on any CPU."""
    from openautoglm.converters.files import load_displayed
    from openautoglm.model.inference.litert_yolo import LiteRtYoloProposer
    from openautoglm.model.inference.ultralytics_yolo import UltralyticsProposer

    weights = str(models / "yolov8n-coco" / "yolov8n_int8.tflite")
    # a low threshold keeps many overlapping low-score boxes, so NMS decisions are compared too
    litert, ultralytics = LiteRtYoloProposer("yolov8n", weights, conf=0.05), UltralyticsProposer("yolov8n", weights,
                                                                                               conf=0.05)
    torch, torchvision = pytest.importorskip("torch"), pytest.importorskip("torchvision")
    torchvision_nms = torchvision.ops.nms

    def ties_in_input_order(boxes, scores, iou):
        order = torch.sort(scores, descending=True, stable=True).indices
        ranks = torch.empty_like(scores)
        ranks[order] = -torch.arange(len(scores), dtype=scores.dtype)
        return torchvision_nms(boxes, ranks, iou)

    monkeypatch.setattr(torchvision.ops, "nms", ties_in_input_order)
    compared = 0
    for path in sorted((shared / "data" / "coco128-train" / "images").glob("*.jpg"))[::2]:
        image = load_displayed(path)
        ours, theirs = litert.propose([image], [])[0], ultralytics.propose([image], [])[0]
        assert [r.label for r in ours] == [r.label for r in theirs], path.name
        for mine, reference in zip(ours, theirs):
            assert mine.score == pytest.approx(reference.score, abs=1e-6), path.name
            assert max(abs(a - b) for a, b in zip(mine.box.bounds(), reference.box.bounds())) < 0.01, path.name
        compared += len(ours)
    assert compared > 500


def test_project_labels_and_synonyms_filter_and_rename(bus, models: Path) -> None:
    from openautoglm.model.inference.yolox import YoloxProposer

    proposer = YoloxProposer("yolox-nano", str(models / "yolox-nano-coco" / "yolox_nano.onnx"),
                             synonyms={"Pedestrian": ["person"]})
    (regions,) = proposer.propose([bus], ["Pedestrian"])
    assert regions and {r.label for r in regions} == {"Pedestrian"}


@pytest.mark.slow
def test_yolov8n_map50_on_coco128(shared: Path, monkeypatch) -> None:
    """mAP@0.5 through the default pipeline (0.605 measured with ultralytics directly)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from openautoglm.converters.files import load_displayed

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    root = shared / "data" / "coco128-train"
    truth = COCO(str(root / "annotations" / "instances.json"))
    pipeline = Pipeline.load("yolo")
    pipeline.proposers[0].conf = 0.001  # the whole precision-recall curve, as ultralytics' val does
    id_by_name = {c["name"]: c["id"] for c in truth.loadCats(truth.getCatIds())}
    detections = []
    image_ids = truth.getImgIds()
    for start in range(0, len(image_ids), 8):
        infos = truth.loadImgs(image_ids[start:start + 8])
        images = [load_displayed(root / "images" / info["file_name"]) for info in infos]
        for info, regions in zip(infos, pipeline.propose(images, [])):
            detections += [_detection(info["id"], id_by_name[r.label], r) for r in regions]
    evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
    evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    assert evaluation.stats[1] >= 0.55


def _detection(image_id: int, category_id: int, region: Region) -> dict:
    box = region.box
    return {"image_id": image_id, "category_id": category_id, "score": region.score,
            "bbox": [box.x1, box.y1, box.width, box.height]}
