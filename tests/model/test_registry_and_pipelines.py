from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from openautoglm.converters import Box, Region
from openautoglm.model.errors import ModelError
from openautoglm.model.inference import registry
from openautoglm.model.inference.interface import ProposerSpec, check_proposals
from openautoglm.model.inference.pipeline import builtin_names, load_spec
from openautoglm.model.inference.settings import ModelSettings


def test_missing_weights_offline_name_the_model_file_and_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAUTOGLM_OFFLINE", "1")
    with pytest.raises(ModelError,
                       match=rf"model 'yolov8n' not found \(offline\): put yolov8n-coco/yolov8n_int8.tflite under "
                             rf"{tmp_path}"):
        registry.resolve("yolov8n", ModelSettings.from_env())


def test_local_path_and_model_dir(tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "yolox-nano-coco" / "yolox_nano.onnx"
    weights.parent.mkdir()
    weights.write_bytes(b"onnx")
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(tmp_path))
    assert registry.resolve("yolox-nano", ModelSettings.from_env())[1] == str(weights)
    assert registry.resolve(str(weights), ModelSettings.from_env()) == (None, str(weights))
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        registry.resolve("nope", ModelSettings.from_env())


def test_online_falls_back_to_the_download_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(tmp_path))
    monkeypatch.delenv("OPENAUTOGLM_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert registry.resolve("yolo11n", ModelSettings.from_env())[1] == "yolo11n.pt"


def test_builtin_pipelines_parse() -> None:
    assert {"yolo", "yolox"} <= set(builtin_names())
    for name in builtin_names():
        spec = load_spec(name)
        assert spec.name == name and spec.proposers


@pytest.mark.parametrize("text, reason", [
    pytest.param("version: 2\nproposers: [{model: yolov8n}]", "unsupported spec version 2", id="version"),
    pytest.param("version: 1\nproposers: []", "'proposers' must be a non-empty list", id="no-proposers"),
    pytest.param("version: 1\nproposers: [{model: yolov8n}", "invalid YAML", id="bad-yaml"),
])
def test_bad_pipeline_specs(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ModelError, match=reason):
        load_spec(str(path))


def test_driver_rejects_a_faulty_proposer() -> None:
    spec = ProposerSpec("fake", "1", "test")
    image = Image.new("RGB", (10, 10))
    good = Region("cat", box=Box(0, 0, 5, 5), score=0.5)
    with pytest.raises(ModelError, match="returned 0 results for 1 images"):
        check_proposals(spec, [image], ["cat"], [])
    with pytest.raises(ModelError, match="label 'dog' is not a project label"):
        check_proposals(spec, [image], ["cat"], [[Region("dog", box=Box(0, 0, 5, 5), score=0.5)]])
    with pytest.raises(ModelError, match="has no score"):
        check_proposals(spec, [image], ["cat"], [[Region("cat", box=Box(0, 0, 5, 5))]])
    with pytest.raises(ModelError, match="lies outside 10x10"):
        check_proposals(spec, [image], ["cat"], [[Region("cat", box=Box(0, 0, 50, 5), score=0.5)]])
    assert check_proposals(spec, [image], ["cat"], [[good]]) == [[good]]
