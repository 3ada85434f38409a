"""The torch-free LiteRT path for ultralytics' .tflite detection exports: metadata, routing,
(de)quantisation; its boxes are compared with ultralytics' in test_real_detectors.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from openautoglm.model.errors import ModelError
from openautoglm.model.inference.litert_yolo import LiteRtYoloProposer, export_metadata, is_litert_detector

NAMES = {0: "person", 1: "bicycle"}


def _packed(path: Path, member: str, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as packed:
        packed.writestr(member, text)
    return path


def test_metadata_packed_as_json_or_python_literal_or_beside(tmp_path: Path) -> None:
    as_json = _packed(tmp_path / "a.tflite", "metadata.json", json.dumps({"names": NAMES, "task": "detect"}))
    as_literal = _packed(tmp_path / "b.tflite", "temp_meta.txt", repr({"names": NAMES, "imgsz": [640, 640]}))
    beside = tmp_path / "c" / "model.tflite"
    beside.parent.mkdir()
    beside.write_bytes(b"not a zip")
    (beside.parent / "metadata.yaml").write_text("task: detect\nnames:\n  0: person\n  1: bicycle\n")
    assert export_metadata(as_json)["names"] == {"0": "person", "1": "bicycle"}  # JSON keys are strings
    assert export_metadata(as_literal)["names"] == NAMES
    assert export_metadata(beside)["names"] == NAMES
    assert export_metadata(_packed(tmp_path / "d.tflite", "notes.txt", "hello")) == {}


def test_only_detection_exports_take_the_litert_path(tmp_path: Path) -> None:
    detect = _packed(tmp_path / "detect.tflite", "metadata.json", json.dumps({"names": NAMES, "task": "detect"}))
    segment = _packed(tmp_path / "segment.tflite", "metadata.json", json.dumps({"names": NAMES, "task": "segment"}))
    assert is_litert_detector(str(detect))
    assert not is_litert_detector(str(segment))  # masks need ultralytics' prototype decoding
    assert not is_litert_detector(str(tmp_path / "missing.tflite"))
    assert not is_litert_detector(str(_packed(tmp_path / "model.onnx", "metadata.json", "{}")))


def test_bad_files_are_named_with_the_reason(tmp_path: Path) -> None:
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match=r"bare\.tflite: no class names"):
        LiteRtYoloProposer("custom", str(bare))
    corrupt = _packed(tmp_path / "corrupt.tflite", "metadata.json", json.dumps({"names": NAMES}))
    with pytest.raises(ModelError, match=r"cannot load LiteRT model .*corrupt\.tflite"):
        LiteRtYoloProposer("custom", str(corrupt))


def test_full_integer_io_is_quantised_and_dequantised(models: Path) -> None:
    proposer = LiteRtYoloProposer("yolov8n", str(models / "yolov8n-coco" / "yolov8n_int8.tflite"))
    blob = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
    assert proposer._quantized(blob) is blob  # ultralytics' exports keep float I/O
    proposer.input = {**proposer.input, "dtype": np.int8, "quantization": (1 / 255, -128)}
    proposer.output = {**proposer.output, "quantization": (1 / 255, -128)}
    quantised = proposer._quantized(blob)
    assert quantised.dtype == np.int8 and quantised.min() >= -128
    np.testing.assert_allclose(proposer._dequantized(quantised), blob, atol=0.5 / 255 + 1e-6)


def test_the_default_pipeline_serves_without_importing_torch(models: Path, tmp_path: Path) -> None:
    """torch costs ~470 MB in every server worker; the default pipeline needs none of it."""
    script = ("import sys; from openautoglm.backends.app import create_app; app = create_app(); "
              "proposer = app.extensions['openautoglm'].pipeline.proposers[0]; "
              "print(type(proposer).__name__, 'torch' in sys.modules, 'ultralytics' in sys.modules)")
    env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(models), "OPENAUTOGLM_OFFLINE": "1",
           "OPENAUTOGLM_STORE": str(tmp_path / "reviews.sqlite3"), "OPENAUTOGLM_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["LiteRtYoloProposer", "False", "False"]


def test_label_candidates_are_the_anchors_under_a_point_scored_for_that_label(models: Path, bus) -> None:
    from openautoglm.converters.geometry import box_iou

    proposer = LiteRtYoloProposer("yolov8n", str(models / "yolov8n-coco" / "yolov8n_int8.tflite"))
    (shown,) = [r for r in proposer.propose([bus], ["bus"])[0] if not r.attributes.get("near_miss")]
    x, y = shown.box.center
    candidates = proposer.label_candidates(bus, "bus", None, (x, y), 0.001)
    assert candidates and all(r.label == "bus" and r.score > 0.001 for r in candidates)
    assert all(r.box.x1 <= x <= r.box.x2 and r.box.y1 <= y <= r.box.y2 for r in candidates)
    best = max(candidates, key=lambda r: r.score)
    assert box_iou(best.box, shown.box) > 0.9 and best.score >= shown.score - 1e-6  # NMS kept the best anchor
    assert [r.attributes.get("near_miss", False) for r in candidates] == [r.score <= 0.25 for r in candidates]
    coach = proposer.label_candidates(bus, "coach", {"coach": ["bus"]}, (x, y), 0.001)  # a project's own name
    assert [(r.box, r.score) for r in coach] == [(r.box, r.score) for r in candidates]
    assert proposer.label_candidates(bus, "unicorn", None, (x, y), 0.001) == []


def test_one_forward_per_image_reuses_the_output_for_the_same_image_only_within(models: Path, bus) -> None:
    proposer = LiteRtYoloProposer("yolov8n", str(models / "yolov8n-coco" / "yolov8n_int8.tflite"))
    runs = []
    invoke = proposer.interpreter.invoke
    proposer.interpreter = type("Counting", (), {"__getattr__": lambda self, name: getattr(invoke.__self__, name),
                                                 "invoke": lambda self: runs.append(1) or invoke()})()
    at = (bus.width / 2, bus.height * 0.6)
    alone = proposer.label_candidates(bus, "bus", None, at, 0.001)
    assert len(runs) == 1
    other = bus.transpose(0)  # another image object
    with proposer.one_forward_per_image():
        detections = proposer.propose([bus], ["bus"])
        within = proposer.label_candidates(bus, "bus", None, at, 0.001)
        assert len(runs) == 2  # the labelled look reused the detections' run
        proposer.propose([other], ["bus"])
        assert proposer.label_candidates(bus, "bus", None, at, 0.001) == within and len(runs) == 4
    assert [(r.box, r.score) for r in within] == [(r.box, r.score) for r in alone]
    assert proposer.propose([bus], ["bus"]) == detections and len(runs) == 5  # outside: run afresh
