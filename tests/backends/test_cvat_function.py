"""The cvat-sdk function checked by cvat-sdk's own machinery, no server: loaded through
cvat-cli's function loader, its output validated and remapped by the SDK's annotation mapper
against a task's labels (the same code `cvat-cli task auto-annotate` and agents run)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

cvataa = pytest.importorskip("cvat_sdk.auto_annotation")
from cvat_cli._internal.common import FunctionLoader  # noqa: E402  (internal API: cvat-cli pinned 2.80.*)
from cvat_cli._internal.parsers import parse_function_parameter  # noqa: E402
from cvat_sdk import models  # noqa: E402
from cvat_sdk.auto_annotation.driver import _AnnotationMapper, _DetectionFunctionContextImpl  # noqa: E402
from cvat_sdk.masks import decode_mask  # noqa: E402

TASK_LABELS = [models.Label(id=10, name="person", type="any", attributes=[], sublabels=[]),
               models.Label(id=11, name="bus", type="any", attributes=[], sublabels=[])]


def _load(*parameters: str):
    arguments = dict(parse_function_parameter(p) for p in parameters)
    return FunctionLoader("openautoglm.backends.cvat_function", None, arguments).load()


def _run(function, image, conf_threshold=None, conv_mask_to_poly=False):
    context = _DetectionFunctionContextImpl(frame_name="bus.jpg", conf_threshold=conf_threshold,
                                            conv_mask_to_poly=conv_mask_to_poly)
    mapper = _AnnotationMapper(logging.getLogger("test"), function.spec.labels, TASK_LABELS,
                               allow_unmatched_labels=True, conv_mask_to_poly=conv_mask_to_poly)
    return mapper.validate_and_remap(function.detect(context, image), 0)


@pytest.fixture
def models_dir(shared: Path, monkeypatch) -> Path:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    return shared / "models"


def test_detections_map_to_task_labels_with_scores(models_dir, bus) -> None:
    function = _load("model=str:yolox", "threshold=float:0.5")
    tags, shapes = _run(function, bus)
    assert tags == [] and shapes
    names = {10: "person", 11: "bus"}
    assert sorted(names[s.label_id] for s in shapes).count("person") >= 3
    assert all(s.type.value == "rectangle" and 0.5 <= s.score <= 1 for s in shapes)
    _, stricter = _run(function, bus, conf_threshold=0.8)  # the context's threshold wins
    assert 0 < len(stricter) < len(shapes) and all(s.score >= 0.8 for s in stricter)


def test_masks_and_conv_mask_to_poly(models_dir, bus, tmp_path: Path) -> None:
    spec = tmp_path / "yolox-grabcut.yaml"
    spec.write_text("version: 1\nname: yolox-grabcut\nproposers: [{model: yolox-nano, conf: 0.6}]\n"
                    "segmenter: {model: grabcut}\n")
    function = _load(f"model=str:{spec}", "labels=str:bus")
    _, shapes = _run(function, bus)
    (bus_mask,) = shapes
    assert bus_mask.type.value == "mask" and bus_mask.score > 0.6
    bitmap = decode_mask(bus_mask.points, image_width=bus.width, image_height=bus.height)
    assert bitmap.sum() > 0.2 * bus.width * bus.height  # the bus is most of the picture
    _, polygons = _run(function, bus, conv_mask_to_poly=True)
    assert [s.type.value for s in polygons] == ["polygon"] and len(polygons[0].points) >= 6


def test_open_vocabulary_pipeline_needs_labels(models_dir, tmp_path: Path, tiny) -> None:
    spec = tmp_path / "owl.yaml"
    spec.write_text(f"version: 1\nname: owl\nproposers: [{{model: {tiny['owlv2']}}}]\n")
    with pytest.raises(cvataa.BadFunctionError, match="open-vocabulary"):
        _load(f"model=str:{spec}")
