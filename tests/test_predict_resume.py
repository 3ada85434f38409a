"""`openautoglm predict` is resumable: killed half way, the next run predicts only the rest and the
output is the same as an uninterrupted run's; images already in the output are skipped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openautoglm.cli.main import main
from openautoglm.cli.predict import Journal
from openautoglm.converters import AnnotationError


def _regions(path: Path) -> dict:
    doc = json.loads(path.read_text())
    names = {i["id"]: i["file_name"] for i in doc["images"]}
    found: dict = {name: [] for name in names.values()}
    for a in doc["annotations"]:
        found[names[a["image_id"]]].append((a["category_id"], [round(v, 3) for v in a["bbox"]], round(a["score"], 5)))
    return {name: sorted(regions) for name, regions in found.items()}


def test_a_killed_run_resumes_with_the_rest_only(shared: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    images = shared / "data" / "coco128-train" / "images"
    output = tmp_path / "killed.json"
    command = [sys.executable, "-m", "openautoglm.cli", "predict", str(images), "--model", "yolox", "--batch-size",
               "4", "-o", str(output)]
    process = subprocess.Popen(command, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = Journal(output).path
    deadline = time.monotonic() + 120
    while (not journal.exists() or journal.read_text().count("\n") < 40) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(Journal(output).done())
    assert 40 <= done_before < 128 and not output.exists()
    assert main(["predict", str(images), "--model", "yolox", "--batch-size", "4", "-o", str(output)]) == 0
    assert f"resuming: {done_before} of 128 images already predicted" in capsys.readouterr().err
    assert not journal.exists()
    whole = tmp_path / "whole.json"
    assert main(["predict", str(images), "--model", "yolox", "--batch-size", "4", "-o", str(whole)]) == 0
    assert _regions(output) == _regions(whole) and len(_regions(whole)) == 128


def test_images_already_in_the_output_are_skipped_unless_forced(shared: Path, tmp_path: Path, monkeypatch,
                                                                capsys) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    folder = tmp_path / "images"
    folder.mkdir()
    source = sorted((shared / "data" / "coco-val100" / "images").glob("*.jpg"))
    for path in source[:3]:
        shutil.copy(path, folder)
    output = tmp_path / "out" / "labels"  # YOLO: a folder
    assert main(["predict", str(folder), "--model", "yolox", "--format", "yolo", "-o", str(output)]) == 0
    shutil.copy(source[3], folder)  # the folder grew by one image
    capsys.readouterr()
    assert main(["predict", str(folder), "--model", "yolox", "--format", "yolo", "-o", str(output)]) == 0
    assert "resuming: 3 of 4 images already predicted" in capsys.readouterr().err
    assert len(list((output / "labels").rglob("*.txt"))) == 4
    assert main(["predict", str(folder), "--model", "yolox", "--format", "yolo", "-o", str(output), "--force"]) == 0
    assert "resuming" not in capsys.readouterr().err


def test_a_journal_cut_short_loses_one_line_and_a_damaged_one_is_an_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "out.json")
    good = json.dumps({"file": "a.jpg", "path": "a.jpg", "error": "x"})
    journal.path.write_text(good + "\n" + json.dumps({"file": "b.jpg", "path": "b.jpg", "error": "y"})[:20])
    assert [e["file"] for e in journal.entries()] == ["a.jpg"]
    journal.path.write_text(good + "\n{not json\n" + good + "\n")
    with pytest.raises(AnnotationError, match="line 2 is not JSON"):
        list(journal.entries())


COMMON = ["--model", "yolox", "--batch-size", "2", "--allow-failures"]


@pytest.fixture
def six_and_a_broken_one(shared: Path, tmp_path: Path, monkeypatch) -> Path:
    """Six coco-val100 images and a corrupt one; the real weights."""
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted((shared / "data" / "coco-val100" / "images").glob("*.jpg"))[:6]:
        shutil.copy(path, folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return folder


def test_workers_give_the_same_output_and_a_clear_error_when_the_model_is_missing(six_and_a_broken_one: Path,
                                                                                  tmp_path: Path, monkeypatch,
                                                                                  capsys) -> None:
    folder, common = six_and_a_broken_one, COMMON
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main(["predict", str(folder), "-o", str(one), *common]) == 0
    assert main(["predict", str(folder), "-o", str(two), "--workers", "2", *common]) == 0
    assert one.read_bytes() == two.read_bytes() and len(json.loads(two.read_text())["images"]) == 6
    assert json.loads(Path(f"{two}.failures.json").read_text())[0]["file_name"].endswith("broken.jpg")
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(tmp_path / "nowhere"))
    capsys.readouterr()
    assert main(["predict", str(folder), "-o", str(tmp_path / "three.json"), "--workers", "2", "--force",
                 *common]) == 2
    assert "model 'yolox-nano' not found" in capsys.readouterr().err


def test_the_ray_engine_gives_the_local_engines_output(six_and_a_broken_one: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install 'openautoglm[ray]')")
    folder = six_and_a_broken_one
    local, remote = tmp_path / "local.json", tmp_path / "ray.json"
    assert main(["predict", str(folder), "-o", str(local), *COMMON]) == 0
    assert main(["predict", str(folder), "-o", str(remote), "--engine", "ray", "--workers", "2", *COMMON]) == 0
    assert local.read_bytes() == remote.read_bytes() and len(json.loads(remote.read_text())["images"]) == 6
    assert json.loads(Path(f"{remote}.failures.json").read_text())[0]["file_name"].endswith("broken.jpg")


def test_two_inputs_with_one_name_are_an_error_before_any_prediction(tmp_path: Path, capsys) -> None:
    from PIL import Image

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "same.jpg")
    output = tmp_path / "out.json"
    assert main(["predict", str(tmp_path / "a"), str(tmp_path / "b"), "--model", "nope-not-loaded", "-o",
                 str(output)]) == 2
    error = capsys.readouterr().err
    assert "two input images are named same.jpg" in error and not output.exists()
