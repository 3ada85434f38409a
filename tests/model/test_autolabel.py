"""AutoLabeler and `openautoglm predict`: one corrupt image fails alone, the rest are labelled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openautoglm.cli.main import main


@pytest.fixture
def folder(tmp_path: Path, bus) -> Path:
    bus.save(tmp_path / "bus.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return tmp_path


def test_predict_keeps_going_past_a_corrupt_image(folder: Path, shared: Path, monkeypatch) -> None:
    from openautoglm import AutoLabeler

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    dataset = AutoLabeler("yolox", labels=["bus", "person"]).predict(sorted(folder.iterdir()))
    (item,) = dataset.items
    assert item.image.file_name == "bus.jpg" and {r.label for r in item.regions} == {"bus", "person"}
    assert item.score == min(r.score for r in item.regions)
    (failure,) = dataset.attributes["failed"]
    assert failure["file_name"].endswith("broken.jpg") and failure["error"]


def test_cli_predict_writes_coco(folder: Path, shared: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    output = tmp_path / "out" / "predictions.json"
    assert main(["predict", str(folder / "bus.jpg"), str(folder / "broken.jpg"), "--model", "yolox",
                 "-o", str(output)]) == 1  # an image failed: the output is written, the exit says so
    doc = json.loads(output.read_text())
    assert len(doc["images"]) == 1 and doc["annotations"] and all("score" in a for a in doc["annotations"])
    assert "skipped" in capsys.readouterr().err
    (failure,) = json.loads(Path(f"{output}.failures.json").read_text())
    assert failure["file_name"].endswith("broken.jpg") and failure["error"]
    assert main(["predict", str(folder / "bus.jpg"), str(folder / "broken.jpg"), "--model", "yolox",
                 "-o", str(output), "--allow-failures"]) == 0


def test_unknown_pipeline_is_a_clean_error(capsys) -> None:
    assert main(["predict", "x.jpg", "--model", "nope", "-o", "o.json"]) == 2
    assert "unknown pipeline 'nope'" in capsys.readouterr().err


def test_the_seed_snippet_runs_as_written(shared: Path, tmp_path: Path, monkeypatch) -> None:
    """The API people copy: model_name= and device=, predict, then labeler.save_to_coco."""
    import shutil

    from pycocotools.coco import COCO

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    source = shared / "data" / "coco-val100" / "images"
    image_paths = [shutil.copy(p, tmp_path) for p in sorted(source.glob("*.jpg"))[:3]]
    from openautoglm import AutoLabeler

    labeler = AutoLabeler(model_name="yolo", device="cpu")
    results = labeler.predict(image_paths)
    labeler.save_to_coco(results, tmp_path / "annotations.json")
    coco = COCO(str(tmp_path / "annotations.json"))
    assert len(coco.getImgIds()) == 3 and coco.getAnnIds()
    assert all(0 <= item.score <= 1 for item in results.items)
    for method, target in (("save_to_yolo", "yolo"), ("save_to_voc", "voc"), ("save_to_label_studio", "ls.json"),
                           ("save_to_cvat", "cvat.xml")):
        getattr(labeler, method)(results, tmp_path / target)
        assert (tmp_path / target).exists(), method
    assert AutoLabeler(model="yolox").pipeline.spec.name == "yolox"
    with pytest.raises(TypeError, match="give one"):
        AutoLabeler(model_name="yolo", model="yolox")
