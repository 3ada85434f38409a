"""`openautoglm predict --format label-studio` writes tasks Label Studio takes as they are: every
task one prediction under the server's model version with its task score (an image with nothing
found included), image URLs from a root, result names from the project's labelling config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from openautoglm.cli.main import main
from openautoglm.model.inference.pipeline import Pipeline

CONFIG = ('<View><Image name="photo" value="$img"/><RectangleLabels name="objects" toName="photo">'
          '<Label value="person"/><Label value="vehicle" predicted_values="bus,car"/></RectangleLabels></View>')


def test_every_task_gets_a_prediction_labelled_for_the_project(shared: Path, tmp_path: Path, monkeypatch,
                                                              bus: Image.Image) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    images = tmp_path / "images"
    images.mkdir()
    bus.save(images / "bus.jpg")  # a bus and people
    for name in ("000000000025.jpg", "000000000030.jpg"):  # giraffes, a vase: nothing of this project's
        shutil.copy(shared / "data" / "coco128-train" / "images" / name, images)
    Image.new("RGB", (320, 240), (128, 128, 128)).save(images / "blank.png")  # nothing to find
    (tmp_path / "config.xml").write_text(CONFIG)
    output = tmp_path / "tasks.json"
    assert main(["predict", str(images), "--model", "yolox", "--format", "label-studio", "-o", str(output),
                 "--label-config", str(tmp_path / "config.xml"),
                 "--image-url-root", "/data/local-files/?d=images/"]) == 0
    tasks = json.loads(output.read_text())
    version = Pipeline.load("yolox").model_version
    assert len(tasks) == 4 and version.startswith("yolox+") and "+calibration-" in version
    for task in tasks:
        assert set(task["data"]) == {"img"} and task["data"]["img"].startswith("/data/local-files/?d=images/")
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == version and 0 <= prediction["score"] <= 1
        for result in prediction["result"]:
            assert (result["from_name"], result["to_name"], result["type"]) == ("objects", "photo", "rectanglelabels")
            assert result["value"]["rectanglelabels"][0] in ("person", "vehicle")
    blank = next(t for t in tasks if t["data"]["img"].endswith("blank.png"))
    assert blank["predictions"][0]["result"] == []
    on_bus = {r["value"]["rectanglelabels"][0] for r in next(t for t in tasks if t["data"]["img"].endswith("bus.jpg"))
              ["predictions"][0]["result"]}
    assert on_bus == {"person", "vehicle"}  # the bus named as the project names it


def test_a_broken_labelling_config_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.xml").write_text("<View><Image")
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--format", "label-studio", "-o", str(tmp_path / "t.json"),
                 "--label-config", str(tmp_path / "config.xml")]) == 2
    assert "not a readable Label Studio labelling config" in capsys.readouterr().err
