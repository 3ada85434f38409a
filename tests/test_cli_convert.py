"""`openautoglm convert`: every format pair from the command line, and every malformed input
gives one clear error naming the file and element, exit code 2, and no output written."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openautoglm.cli.main import main

FORMATS = ["coco", "voc", "yolo", "label_studio", "cvat", "labelme"]
SUFFIX = {"coco": ".json", "label_studio": ".json", "cvat": ".xml", "voc": "", "yolo": "", "labelme": ""}

COCO = {
    "images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 4, "name": "dog"}],
    "annotations": [
        {"id": 3, "image_id": 7, "category_id": 4, "bbox": [2, 3, 10, 12], "iscrowd": 0, "area": 120,
         "segmentation": [[2, 3, 12, 3, 12, 15, 2, 15]]},
        {"id": 5, "image_id": 7, "category_id": 1, "bbox": [20, 5, 5, 5], "iscrowd": 0, "area": 25, "segmentation": []},
    ],
}


@pytest.fixture
def coco_file(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (40, 30)).save(images / "a.png")
    path = tmp_path / "in.json"
    path.write_text(json.dumps(COCO))
    return path


@pytest.mark.parametrize("source, target", [pytest.param(a, b, id=f"{a}-{b}") for a, b in itertools.product(FORMATS,
                                                                                                            repeat=2)])
def test_convert_every_pair(coco_file: Path, tmp_path: Path, source: str, target: str) -> None:
    images = str(tmp_path / "images")
    first = tmp_path / f"first{SUFFIX[source]}"
    assert main(["convert", str(coco_file), "--from", "coco", "--to", source, str(first)]) == 0
    second = tmp_path / f"second{SUFFIX[target]}"
    assert main(["convert", str(first), "--from", source, "--to", target, str(second), "--images", images]) == 0
    back = tmp_path / "back.json"
    assert main(["convert", str(second), "--from", target, "--to", "coco", str(back), "--images", images]) == 0
    doc = json.loads(back.read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    found = sorted((names[a["category_id"]], a["bbox"]) for a in doc["annotations"])
    assert [label for label, _ in found] == ["cat", "dog"]
    # within 1 px: VOC stores integers and keeps the polygon as a rasterised mask
    assert found[0][1] == pytest.approx([20, 5, 5, 5], abs=1) and found[1][1] == pytest.approx([2, 3, 10, 12], abs=1)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openautoglm.cli", *args], capture_output=True, text=True)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _yolo_with_four_numbers(root: Path) -> Path:
    _write(root / "data.yaml", "names: [cat]\ntrain: images/train\nval: images/train\n")
    (root / "images" / "train").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(root / "images" / "train" / "x.png")
    _write(root / "labels" / "train" / "x.txt", "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n")
    return root


MALFORMED = [
    pytest.param("coco", lambda d: _write(d / "t.json", '{"images": [{"id": 1,'), "t.json",
                 "invalid JSON at line 1", id="truncated-json"),
    pytest.param("voc", lambda d: _write(d / "v" / "Annotations" / "x.xml",
                                         "<annotation><filename>x.jpg</filename><object><name>a</name></object></annotation>"),
                 "x.xml", "missing <size>", id="voc-without-size"),
    pytest.param("yolo", lambda d: _yolo_with_four_numbers(d / "y"), "x.txt: line 2",
                 "expected 4 numbers (box), 8 (oriented box) or 6+ pairs (polygon) after the class, got 3",
                 id="yolo-line-with-4-numbers"),
    pytest.param("coco", lambda d: _write(d / "r.json", json.dumps({
        **COCO, "annotations": [{"id": 9, "image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 1,
                                 "segmentation": {"size": [10, 10], "counts": [100]}}]})),
                 "annotations[0] (id 9)", "RLE size 10x10 disagrees with image 40x30", id="rle-size-mismatch"),
    pytest.param("coco", lambda d: _write(d / "c.json", json.dumps({
        **COCO, "annotations": [{"id": 9, "image_id": 7, "category_id": 2, "bbox": [0, 0, 1, 1]}]})),
                 "annotations[0] (id 9)", "unknown category_id 2", id="unknown-category-id"),
]


@pytest.mark.parametrize("fmt, make, where, reason", MALFORMED)
def test_malformed_input_fails_cleanly(tmp_path: Path, fmt: str, make, where: str, reason: str) -> None:
    source = make(tmp_path)
    for target in ("coco", "yolo"):
        output = tmp_path / f"out-{target}"
        result = _run(["convert", str(source), "--from", fmt, "--to", target, str(output)])
        assert result.returncode == 2, result.stderr
        message = result.stderr.strip()
        assert message.startswith("openautoglm: error: "), message
        assert where in message and reason in message, message
        assert len(message.splitlines()) == 1, "one error line, no traceback"
        assert not output.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out-{target}")], "temp files left behind"


def test_failed_write_leaves_no_output(tmp_path: Path) -> None:
    """An error while writing (an image to copy is missing) leaves neither output nor temp files."""
    source = _write(tmp_path / "in.json", json.dumps(COCO))
    output = tmp_path / "out"
    result = _run(["convert", str(source), "--from", "coco", "--to", "yolo", str(output),
                   "--images", str(tmp_path / "no-such-dir")])
    assert result.returncode == 2 and "image not found" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


def test_existing_output_directory_is_not_overwritten(tmp_path: Path, coco_file: Path) -> None:
    output = tmp_path / "taken"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    result = _run(["convert", str(coco_file), "--from", "coco", "--to", "voc", str(output)])
    assert result.returncode == 2 and "already exists" in result.stderr
    assert [p.name for p in output.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("spelling", ["label-studio", "label_studio", "Label-Studio", "ls"])
def test_label_studio_is_accepted_in_every_spelling(coco_file: Path, tmp_path: Path, spelling: str) -> None:
    output = tmp_path / f"out-{spelling}.json"
    assert main(["convert", str(coco_file), "--from", "coco", "--to", spelling, str(output),
                 "--images", str(tmp_path / "images")]) == 0
    back = tmp_path / f"back-{spelling}.json"
    assert main(["convert", str(output), "--from", spelling, "--to", "coco", str(back),
                 "--images", str(tmp_path / "images")]) == 0
    assert len(json.loads(back.read_text())["annotations"]) == len(COCO["annotations"])


def test_an_unknown_format_names_the_accepted_spellings(coco_file: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(coco_file), "--from", "coco", "--to", "labelme-ish", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "unknown format 'labelme-ish'" in error and "label_studio (ls, label-studio" in error


def test_models_table_columns_never_run_together(capsys) -> None:
    from openautoglm.model.inference import registry
    from openautoglm.model.inference.settings import ModelSettings

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "family"])
    rows = registry.describe(ModelSettings.from_env())
    for row, line in zip(rows, lines[header + 1:]):
        cells = line.split("  ")  # columns are at least two spaces apart
        cells = [cell.strip() for cell in cells if cell.strip()]
        assert cells[:3] == [row["name"], row["family"], row["licence"]], line


def _roboflow_yolo(root: Path) -> Path:
    """Roboflow's YOLO export: data.yaml with paths relative to the dataset, images in split folders."""
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(root / "train" / "images" / "a.jpg")
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['cat']\n")
    return root


def _cvat_video(path: Path) -> Path:
    path.write_text('<?xml version="1.0"?><annotations><version>1.1</version><meta><task><size>2</size>'
                    '<original_size><width>8</width><height>6</height></original_size></task></meta>'
                    '<track id="0" label="car"><box frame="0" outside="0" occluded="0" keyframe="1" xtl="1" ytl="1" '
                    'xbr="5" ybr="5" z_order="0"/></track></annotations>')
    return path


def test_a_yolo_dataset_with_obj_names_images_and_annotations_folders(tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    (root / "Images").mkdir(parents=True), (root / "Annotations").mkdir()
    (root / "obj.names").write_text("cat\ndog\n")
    Image.new("RGB", (40, 30)).save(root / "Images" / "a.jpg")
    (root / "Annotations" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    output = tmp_path / "out.json"
    assert main(["convert", str(root), "--from", "yolo", "--to", "coco", str(output)]) == 0
    coco = json.loads(output.read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert [i["file_name"] for i in coco["images"]] == ["a.jpg"]
    assert [(names[a["category_id"]], a["bbox"]) for a in coco["annotations"]] == [("dog", [10, 7.5, 20, 15])]


def test_a_cvat_video_export_converts_frame_by_frame(tmp_path: Path) -> None:
    output = tmp_path / "out.json"
    assert main(["convert", str(_cvat_video(tmp_path / "video.xml")), "--from", "cvat", "--to", "coco",
                 str(output)]) == 0
    coco = json.loads(output.read_text())
    assert [i["file_name"] for i in coco["images"]] == ["frame_000000.PNG", "frame_000001.PNG"]
    assert [a["bbox"] for a in coco["annotations"]] == [[1, 1, 4, 4]]


@pytest.mark.parametrize("make, source_format", [
    pytest.param(lambda tmp: (tmp / "empty.json").write_text('{"images": [], "annotations": [], "categories": []}')
                 and tmp / "empty.json", "coco", id="coco-without-images"),
])
def test_an_input_that_reads_as_nothing_is_an_error_not_an_empty_success(tmp_path: Path, make, source_format,
                                                                          capsys) -> None:
    source = make(tmp_path)
    output = tmp_path / "out.json"
    assert main(["convert", str(source), "--from", source_format, "--to", "coco", str(output)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(source) in error[0] and "holds no images" in error[0]
    assert not output.exists()



def test_a_roboflow_yolo_export_reads_its_split_folders(tmp_path: Path) -> None:
    root = _roboflow_yolo(tmp_path / "roboflow")
    (root / "valid" / "images").mkdir(parents=True), (root / "valid" / "labels").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(root / "valid" / "images" / "b.jpg")
    (root / "valid" / "labels" / "b.txt").write_text("0 0.25 0.25 0.1 0.1\n0 0.75 0.75 0.1 0.1\n")
    output = tmp_path / "out.json"
    assert main(["convert", str(root), "--from", "yolo", "--to", "coco", str(output)]) == 0
    coco = json.loads(output.read_text())
    assert sorted(i["file_name"] for i in coco["images"]) == ["a.jpg", "b.jpg"] and len(coco["annotations"]) == 3


def _cvat_project(root: Path) -> Path:
    """A CVAT project export: a.jpg and b.jpg in each of three subsets, images under images/<subset>/."""
    images = []
    for number, subset in enumerate(("Train", "Validation", "Test")):
        for name in ("a.jpg", "b.jpg"):
            (root / "images" / subset).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40 + number, 30)).save(root / "images" / subset / name)
            images.append(f'<image id="{len(images)}" name="{name}" subset="{subset}" width="{40 + number}" '
                          f'height="30"><box label="cat" occluded="0" source="manual" xtl="1" ytl="1" '
                          f'xbr="{5 + number}" ybr="5" z_order="0"/></image>')
    path = root / "annotations.xml"
    path.write_text('<?xml version="1.0"?><annotations><version>1.1</version><meta><project><labels><label>'
                    '<name>cat</name></label></labels></project></meta>' + "".join(images) + "</annotations>")
    return path


def test_a_cvat_project_with_subsets_keeps_every_image_in_voc_and_yolo(tmp_path: Path) -> None:
    source = _cvat_project(tmp_path / "project")
    voc = tmp_path / "voc"
    assert main(["convert", str(source), "--from", "cvat", "--to", "voc", str(voc),
                 "--images", str(tmp_path / "project" / "images")]) == 0
    assert sorted(str(p.relative_to(voc / "Annotations")) for p in (voc / "Annotations").rglob("*.xml")) == [
        f"{subset}/{name}.xml" for subset in ("Test", "Train", "Validation") for name in ("a", "b")]
    assert sorted(p.name for p in (voc / "ImageSets" / "Main").iterdir()) == ["test.txt", "train.txt", "val.txt"]
    assert len(list((voc / "JPEGImages").rglob("*.jpg"))) == 6
    yolo = tmp_path / "yolo"
    assert main(["convert", str(source), "--from", "cvat", "--to", "yolo", str(yolo),
                 "--images", str(tmp_path / "project" / "images")]) == 0
    config = (yolo / "data.yaml").read_text()
    assert "train: images/train" in config and "val: images/val" in config and "test: images/test" in config
    back = tmp_path / "back.json"
    assert main(["convert", str(yolo), "--from", "yolo", "--to", "coco", str(back)]) == 0
    widths = sorted(i["width"] for i in json.loads(back.read_text())["images"])
    assert widths == [40, 40, 41, 41, 42, 42]  # all six, each with its own subset's image


def test_a_yolo_pose_dataset_reads_boxes_with_keypoints_and_round_trips(tmp_path: Path) -> None:
    root = tmp_path / "pose"
    (root / "images" / "train").mkdir(parents=True), (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nkpt_shape: [3, 3]\n"
                                    "names: {0: person}\n")
    Image.new("RGB", (100, 50)).save(root / "images" / "train" / "a.jpg")
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.4 0.8 0.4 0.2 2 0 0 0 0.6 0.7 1\n")
    coco = tmp_path / "coco.json"
    assert main(["convert", str(root), "--from", "yolo", "--to", "coco", str(coco)]) == 0
    (annotation,) = json.loads(coco.read_text())["annotations"]
    assert annotation["bbox"] == pytest.approx([30, 5, 40, 40]) and annotation["segmentation"] == []
    assert annotation["keypoints"] == pytest.approx([40, 10, 2, 0, 0, 0, 60, 35,
                                                     1]) and annotation["num_keypoints"] == 2
    again = tmp_path / "again"
    assert main(["convert", str(coco), "--from", "coco", "--to", "yolo", str(again), "--images",
                 str(root / "images" / "train")]) == 0
    data_yaml = (again / "data.yaml").read_text()
    assert "kpt_shape:\n- 3\n- 3" in data_yaml and "task: pose" in data_yaml
    assert [float(v) for v in (again / "labels" / "train" / "a.txt").read_text().split()] == pytest.approx(
        [float(v) for v in "0 0.5 0.5 0.4 0.8 0.4 0.2 2 0 0 0 0.6 0.7 1".split()])
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.4 0.8 0.4 0.2 2\n")
    # a pose line with too few numbers is an error, not polygons made of box and keypoint numbers
    assert main(["convert", str(root), "--from", "yolo", "--to", "coco", str(tmp_path / "bad.json")]) == 2


def test_skip_invalid_leaves_out_one_bad_element_and_lists_it(tmp_path: Path, capsys) -> None:
    images = "".join(f'<image id="{n}" name="{n}.jpg" width="40" height="30"><box label="cat" occluded="0" '
                     f'xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>'
                     + ('<polyline label="" occluded="0" points="1,1;5,5" z_order="0"/>' if n == 1 else "")
                     + "</image>" for n in range(3))
    source = tmp_path / "cvat.xml"
    source.write_text('<?xml version="1.0"?><annotations><version>1.1</version>' + images + "</annotations>")
    assert main(["convert", str(source), "--from", "cvat", "--to", "coco", str(tmp_path / "strict.json")]) == 2
    error = capsys.readouterr().err
    assert "<image> 2 ('1.jpg'): <polyline> 2: region label must be a non-empty name" in error
    assert main(["convert", str(source), "--from", "cvat", "--to", "coco", str(tmp_path / "out.json"),
                 "--skip-invalid"]) == 0
    warning = capsys.readouterr().err
    assert "skipped 1 invalid element(s)" in warning and "<image> 2 ('1.jpg'): <polyline> 2" in warning
    doc = json.loads((tmp_path / "out.json").read_text())
    assert len(doc["images"]) == 3 and len(doc["annotations"]) == 3  # the three boxes, the polyline left out


def test_skip_invalid_in_label_studio_leaves_out_a_bad_result_or_task(tmp_path: Path, capsys) -> None:
    def box(label: str) -> dict:
        return {"id": label, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                "original_width": 40, "original_height": 30,
                "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": [label]}}

    broken = box("dog")
    broken["value"]["rectanglelabels"] = []
    tasks = [{"id": 1, "data": {"image": "a.jpg"}, "annotations": [{"result": [box("cat"), broken]}]},
             {"id": 2, "annotations": [{"result": [box("cat")]}]},  # no data: the task cannot be read
             {"id": 3, "data": {"image": "c.jpg"}, "annotations": [{"result": [box("cat")]}]}]
    source = tmp_path / "tasks.json"
    source.write_text(json.dumps(tasks))
    assert main(["convert", str(source), "--from", "label_studio", "--to", "coco", str(tmp_path / "strict.json")]) == 2
    assert "task 0 (id 1): annotations[0].result[1]: value.rectanglelabels is empty" in capsys.readouterr().err
    assert main(["convert", str(source), "--from", "label_studio", "--to", "coco", str(tmp_path / "out.json"),
                 "--skip-invalid"]) == 0
    warning = capsys.readouterr().err
    assert "skipped 2 invalid element(s)" in warning and "task 0 (id 1): annotations[0].result[1]" in warning
    assert "task 1 (id 2): " in warning
    doc = json.loads((tmp_path / "out.json").read_text())
    assert [i["file_name"] for i in doc["images"]] == ["a.jpg", "c.jpg"] and len(doc["annotations"]) == 2


@pytest.mark.parametrize("source_format", ["voc", "labelme", "coco", "yolo", "cvat", "label-studio"])
def test_a_mistyped_or_empty_input_is_an_error_not_an_empty_dataset(tmp_path: Path, source_format: str,
                                                                    capsys) -> None:
    output = tmp_path / "out.json"
    assert main(["convert", str(tmp_path / "no-such-folder"), "--from", source_format, "--to", "coco",
                 str(output)]) == 2
    assert f"{tmp_path / 'no-such-folder'}: no such file or folder" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    assert main(["convert", str(tmp_path / "folder"), "--from", source_format, "--to", "coco", str(output)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and not output.exists()
    assert any(reason in error for reason in ("holds nothing to read", "Is a directory", "no class names")), error


def test_a_declared_split_is_found_under_its_other_name_or_is_an_error(tmp_path: Path, capsys) -> None:
    root = _roboflow_yolo(tmp_path / "roboflow")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnames: ['cat']\n")
    (root / "val" / "images").mkdir(parents=True), (root / "val" / "labels").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(root / "val" / "images" / "b.jpg")
    (root / "val" / "labels" / "b.txt").write_text("0 0.25 0.25 0.1 0.1\n")
    output = tmp_path / "out.json"
    assert main(["convert", str(root), "--from", "yolo", "--to", "coco", str(output)]) == 0  # valid/ is val/ here
    assert sorted(i["file_name"] for i in json.loads(output.read_text())["images"]) == ["a.jpg", "b.jpg"]
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
                                    "names: ['cat']\n")
    assert main(["convert", str(root), "--from", "yolo", "--to", "coco", str(tmp_path / "again.json")]) == 2
    assert "declares split 'test' at '../test/images'" in capsys.readouterr().err


def test_output_and_input_errors_are_one_line_and_exit_2(tmp_path: Path, coco_file: Path, capsys) -> None:
    (tmp_path / "a-file").write_text("x")
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 4)
    commands = [["convert", str(coco_file), "--from", "coco", "--to", "coco", str(tmp_path / "a-file" / "out.json")],
                ["convert", str(coco_file), "--from", "coco", "--to", "coco", str(tmp_path)],
                ["convert", str(binary), "--from", "coco", "--to", "yolo", str(tmp_path / "yolo")]]
    for command in commands:
        assert main(command) == 2, command
        error = capsys.readouterr().err
        assert len(error.strip().splitlines()) == 1 and error.startswith("openautoglm: error:"), error


def test_outputs_follow_the_umask(tmp_path: Path, coco_file: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main(["convert", str(coco_file), "--from", "coco", "--to", "coco", str(tmp_path / "out.json")]) == 0
        assert main(["convert", str(coco_file), "--from", "coco", "--to", "voc", str(tmp_path / "voc")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "voc").stat().st_mode & 0o777 == 0o755


def test_scores_survive_cvat_xml_and_yolo_with_save_conf(tmp_path: Path) -> None:
    from openautoglm.converters import AnnotatedImage, Box, Dataset, ImageRecord, Region, Shape, load, save

    regions = [Region("cat", Shape.BOX, Box(2, 2, 20, 10), score=0.8125), Region("cat", Shape.BOX, Box(5, 5, 9, 9))]
    dataset = Dataset(items=[AnnotatedImage(ImageRecord(1, "a.jpg", 40, 30), regions)])
    save(dataset, tmp_path / "cvat.xml", "cvat")
    text = (tmp_path / "cvat.xml").read_text()
    assert "<name>confidence</name>" in text and '<attribute name="confidence">0.8125</attribute>' in text
    (back,) = load(tmp_path / "cvat.xml", "cvat").items
    assert [r.score for r in back.regions] == [0.8125, None]
    assert all("confidence" not in r.attributes for r in back.regions)
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    save(dataset, tmp_path / "yolo", "yolo", save_conf=True)
    lines = (tmp_path / "yolo" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert [len(line.split()) for line in lines] == [6, 5]
    (again,) = load(tmp_path / "yolo", "yolo", tmp_path).items
    assert [r.score for r in again.regions] == [0.8125, None]
    save(dataset, tmp_path / "plain", "yolo")  # by default the labels stay trainable: 5 columns
    assert [len(line.split()) for line in (tmp_path / "plain" / "labels" / "train" / "a.txt").read_text().splitlines()
            ] == [5, 5]


@pytest.mark.parametrize("annotations, task", [
    ([{"id": 1, "image_id": 1, "caption": "a cat on a mat"}], "captions"),
    ([{"image_id": 1, "file_name": "1.png", "segments_info": [{"id": 3, "category_id": 1}]}], "panoptic"),
    ([{"id": 1, "image_id": 1, "category_id": 1}], "image labels"),
])
def test_coco_files_of_other_tasks_are_refused_by_name(tmp_path: Path, annotations: list, task: str,
                                                      capsys) -> None:
    source = tmp_path / "other.json"
    source.write_text(json.dumps({"images": [{"id": 1, "file_name": "1.jpg", "width": 4, "height": 3}],
                                  "categories": [{"id": 1, "name": "cat"}], "annotations": annotations}))
    assert main(["convert", str(source), "--from", "coco", "--to", "yolo", str(tmp_path / "out")]) == 2
    assert f"this is a COCO {task}" in capsys.readouterr().err


def test_voc_image_sets_keep_images_without_objects_and_image_labels(tmp_path: Path) -> None:
    """An image listed in ImageSets without an annotation file is an image with no objects; the
    per-class lists' `1` is a tag where no object of that class is in the image."""
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True), (root / "JPEGImages").mkdir(), (root / "ImageSets" / "Main").mkdir(
        parents=True)
    for name in ("a", "b"):
        Image.new("RGB", (40, 30)).save(root / "JPEGImages" / f"{name}.jpg")
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>40</width><height>30</height><depth>3</depth></size>"
        "<object><name>cat</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>10</xmax><ymax>10</ymax></bndbox>"
        "</object></annotation>")
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    (root / "ImageSets" / "Main" / "cat_train.txt").write_text("a  1\nb -1\n")
    (root / "ImageSets" / "Main" / "dog_train.txt").write_text("a -1\nb  1\n")
    output = tmp_path / "out.json"
    assert main(["convert", str(root), "--from", "voc", "--to", "label-studio", str(output)]) == 0
    tasks = {Path(t["data"]["image"]).name: t for t in json.loads(output.read_text())}
    assert set(tasks) == {"a.jpg", "b.jpg"}
    results = {name: [(r["type"], r["value"].get("rectanglelabels") or r["value"].get("choices"))
                      for a in t["annotations"] for r in a["result"]] for name, t in tasks.items()}
    assert results["a.jpg"] == [("rectanglelabels", ["cat"])]  # its cat is an object already: no tag
    assert results["b.jpg"] == [("choices", ["dog"])]


def test_createml_and_segment_anything_are_read(tmp_path: Path, capsys) -> None:
    from pycocotools import mask as coco_mask

    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    createml = tmp_path / "createml.json"
    createml.write_text(json.dumps([{"image": "a.jpg", "annotations": [
        {"label": "cat", "coordinates": {"x": 10, "y": 8, "width": 8, "height": 6}}]}]))
    assert main(["convert", str(createml), "--from", "createml", "--to", "coco", str(tmp_path / "c.json")]) == 0
    coco = json.loads((tmp_path / "c.json").read_text())
    assert [a["bbox"] for a in coco["annotations"]] == [[6.0, 5.0, 8.0, 6.0]]
    assert (coco["images"][0]["width"], coco["images"][0]["height"]) == (40, 30)
    bitmap = np.zeros((30, 40), dtype=np.uint8)
    bitmap[5:15, 10:20] = 1
    rle = coco_mask.encode(np.asfortranarray(bitmap))
    sam = tmp_path / "sa_1.json"
    sam.write_text(json.dumps({"image": {"image_id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
                               "annotations": [{"id": 7, "segmentation": {"size": [30, 40],
                                                                          "counts": rle["counts"].decode()},
                                                "predicted_iou": 0.93, "bbox": [10, 5, 10, 10]}]}))
    assert main(["convert", str(sam), "--from", "sam", "--to", "coco", str(tmp_path / "s.json")]) == 0
    (annotation,) = json.loads((tmp_path / "s.json").read_text())["annotations"]
    assert annotation["bbox"] == [10.0, 5.0, 10.0, 10.0] and annotation["score"] == 0.93 and annotation["area"] == 100
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "c.json"), "--from", "coco", "--to", "sam", str(tmp_path / "x")]) == 2
    assert "sam is read-only here" in capsys.readouterr().err
