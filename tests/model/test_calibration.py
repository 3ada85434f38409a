"""Calibrated confidence: the files, the maps, and that calibration measured on held-out images
beats the raw scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openautoglm.cli.main import main
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.scores.calibration import TASK_FEATURES, Calibration, CalibrationError
from openautoglm.model.scores.evaluation import Detection, ImageRecord, ece, ece_floor, judge, review
from openautoglm.model.scores.fitting import collect, fit, metrics, scored


def _calibration(**changes) -> Calibration:
    values = dict(pipeline_version="p@1", display_threshold=0.25, region_x=(0.0, 0.3, 0.6, 1.0),
                  region_y=(0.1, 0.2, 0.7, 0.95), task_mean=(0.0,) * len(TASK_FEATURES),
                  task_scale=(1.0,) * len(TASK_FEATURES), task_coef=(0.5, 1.0, -0.1, -0.3, -1.0, -0.2, -0.5),
                  task_intercept=0.2, provenance={"data": "unit test"})
    return Calibration(**{**values, **changes})


def test_the_region_map_is_monotone_and_a_file_round_trip_keeps_it(tmp_path: Path) -> None:
    calibration = _calibration()
    grid = np.linspace(0, 1, 101)
    assert np.all(np.diff(calibration.region_probability(grid)) >= 0)
    calibration.save(tmp_path / "c.json")
    back = Calibration.load(tmp_path / "c.json")
    assert back == calibration and back.digest == calibration.digest
    assert back.task_probability([0.9, 0.4], [0.1]) == calibration.task_probability([0.9, 0.4], [0.1])
    assert _calibration(provenance={"other": 1}).digest == calibration.digest  # content, not provenance
    assert _calibration(region_y=(0.1, 0.3, 0.7, 0.95)).digest != calibration.digest
    with pytest.raises(ValueError, match="non-decreasing"):
        _calibration(region_y=(0.5, 0.2, 0.7, 0.95))


@pytest.mark.parametrize("content, reason", [
    pytest.param(None, "does not exist", id="missing"),
    pytest.param("{not json", "not readable JSON", id="not-json"),
    pytest.param('{"format": "something-else"}', "not an openautoglm calibration", id="wrong-format"),
    pytest.param('{"format": "openautoglm-calibration", "version": 1, "task_features": '
                 + json.dumps(list(TASK_FEATURES)) + ', "region_x": [0.1]}', "incomplete or malformed", id="cut-short"),
])
def test_a_bad_calibration_file_is_one_clear_error_naming_it(tmp_path: Path, content, reason: str) -> None:
    path = tmp_path / "calibration.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CalibrationError, match=f"{path}.*{reason}|{reason}.*{path}"):
        Calibration.load(path)


def test_the_cli_says_which_calibration_file_is_broken(tmp_path: Path, shared: Path, monkeypatch, capsys) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    monkeypatch.setenv("OPENAUTOGLM_CALIBRATION", str(broken))
    assert main(["predict", str(tmp_path), "-o", str(tmp_path / "out.json")]) == 2
    assert f"calibration file {broken} is not readable JSON" in capsys.readouterr().err


def test_review_curve_takes_ties_together_and_counts_accepted_correct_items() -> None:
    point = review([0.1, 0.2, 0.2, 0.9, 0.95], [True, True, False, False, False])
    assert point.threshold == 0.2 and point.reviewed == pytest.approx(0.6)
    assert point.accepted == pytest.approx(2 / 3) and point.floor == pytest.approx(0.95 * 0.4)


def test_the_ece_floor_is_what_a_perfect_score_measures_and_shrinks_with_more_data() -> None:
    rng = np.random.default_rng(1)
    few, many = rng.uniform(0.3, 1.0, 50), rng.uniform(0.3, 1.0, 5000)
    (few_median, few_high), (many_median, _) = ece_floor(few), ece_floor(many)
    assert few_median > 3 * many_median and few_median < few_high
    # outcomes drawn from the scores themselves (a perfect score) land under the 95th percentile most of the time
    inside = [ece(few, rng.random(50) < few) <= few_high for _ in range(200)]
    assert 0.85 <= np.mean(inside) <= 1.0
    assert ece_floor([0.0, 1.0, 1.0]) == (0.0, 0.0)  # certain scores: a perfect one measures no error


def test_judging_is_greedy_by_score_and_ignores_crowds() -> None:
    record = ImageRecord(1, "a.jpg", [Detection("cat", 0.9, (0, 0, 10, 10)), Detection("cat", 0.8, (0, 0, 10, 10)),
                                      Detection("dog", 0.7, (50, 50, 60, 60))], [],
                         [("cat", (0, 0, 10, 10), False), ("dog", (0, 0, 5, 5), True), ("cow", (20, 20, 30, 30),
                                                                                        False)])
    outcome = judge(record, None)
    assert outcome.correct.tolist() == [True, False, False] and outcome.missed == 1 and outcome.needs_edit
    assert judge(record, {"cat"}).correct.tolist() == [True, False]


@pytest.fixture(scope="module")
def val100(shared: Path, tmp_path_factory):
    """Raw YOLOv8n output on coco-val100, split into the two halves the calibration issue uses."""
    import os

    os.environ["OPENAUTOGLM_MODEL_DIR"] = str(shared / "models")
    pipeline = Pipeline.load("yolo", calibration=None)
    root = shared / "data" / "coco-val100"
    records = collect(pipeline, root / "images", root / "annotations" / "instances.json")
    return pipeline, records[0::2], records[1::2]


@pytest.mark.slow
def test_calibration_fitted_on_one_half_beats_raw_scores_on_the_other(val100) -> None:
    pipeline, first, second = val100
    for fitted_on, held_out in ((first, second), (second, first)):
        calibration = fit(fitted_on, None, pipeline.version, 0.25)
        outcomes = [judge(r, None) for r in held_out]
        raw, calibrated = metrics(scored(outcomes, None)), metrics(scored(outcomes, calibration))
        assert calibrated["region_ece"] < raw["region_ece"]
        assert calibrated["task_ece"] < raw["task_ece"]
        assert calibrated["region_auroc"] == pytest.approx(raw["region_auroc"], abs=1e-9)  # the order is kept


@pytest.mark.slow
def test_a_calibrated_pipeline_gives_the_same_boxes_with_calibrated_scores(val100, shared: Path, tmp_path) -> None:
    from openautoglm.converters.files import load_displayed

    pipeline, first, _ = val100
    calibration = fit(first, None, pipeline.version, 0.25)
    calibrated = Pipeline.load("yolo", calibration=calibration)
    assert calibrated.model_version == f"{pipeline.version}+calibration-{calibration.digest}"
    assert pipeline.model_version.endswith("+calibration-raw")
    images = [load_displayed(shared / "data" / "coco-val100" / "images" / r.file_name) for r in first[:6]]
    for raw, scored_image in zip(pipeline.predict(images, []), calibrated.predict(images, [])):
        assert [r.box for r in raw.regions] == [r.box for r in scored_image.regions]
        for before, after in zip(raw.regions, scored_image.regions):
            assert after.calibrated_score == pytest.approx(calibration.region_probability(before.score))
            assert after.score == before.score and before.calibrated_score is None  # the detector's stays
        assert 0 <= scored_image.score <= 1


@pytest.mark.slow
def test_calibrate_then_eval_from_the_command_line(shared: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    root = shared / "data" / "coco-val100"
    images, truth = root / "images", root / "annotations" / "instances.json"
    calibration_file = tmp_path / "yolo.calibration.json"
    traffic = ["person", "car", "bus", "truck", "bicycle", "motorcycle", "traffic light"]
    assert main(["calibrate", "--images", str(images), "--truth", str(truth), "--out", str(calibration_file)]) == 0
    fitted = Calibration.load(calibration_file)
    assert fitted.pipeline_version.startswith("yolo+yolov8n@") and fitted.provenance["images"] == 100
    out = tmp_path / "report"
    assert main(["eval", "--images", str(images), "--truth", str(truth), "--labels", *traffic,
                 "--calibration", str(calibration_file), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())  # strict JSON: no NaN
    folds = report["label_sets"]["project"]["cross_validated"]["folds"]
    assert len(folds) == 2 and all(f["calibrated"]["region_ece"] < f["raw"]["region_ece"] for f in folds)
    assert 0 < report["map"]["display_threshold"]["map50"] <= report["map"]["full_curve"]["map50"] <= 1
    for png in ("reliability-project.png", "review-project.png"):
        data = (out / png).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert "| mean | calibrated |" in (out / "report.md").read_text()
    low, high = folds[0]["calibrated"]["task_ece_floor"]
    assert 0 < low < high < 1


@pytest.mark.slow
def test_calibrate_from_the_review_store(val100, tmp_path: Path, capsys) -> None:
    """Reviews as Label Studio's webhooks leave them in the store (the truth played as the reviewer)
    refit the calibration: scores on the other half's images improve over raw."""
    from openautoglm.converters import Box, Region
    from openautoglm.model.reviews.store import ReviewStore, match
    from openautoglm.model.scores.scoring import ImageEvidence

    pipeline, reviewed, held_out = val100
    store = ReviewStore(tmp_path / "reviews.sqlite3")
    version = f"{pipeline.version}+calibration-raw"
    for record in reviewed:
        shown = [Region(d.label, box=Box(*d.box), score=d.score) for d in record.shown]
        evidence = ImageEvidence.of_scores([d.score for d in record.shown], [d.score for d in record.near_misses])
        store.save_predictions(version, [(record.image_id, shown, evidence, None)], project="5")
        (stored,) = [store.prediction(record.image_id)[1]]
        human = [Region(label, box=Box(*xyxy), source="human") for label, xyxy, crowd in record.truths if not crowd]
        store.record(f"a{record.image_id}", record.image_id, version, match(stored, human))
    store.record("other", 1, "other-weights@1+calibration-raw", [("cat", 0.9, 1, "prediction", 0.9, None)])
    tasks = store.reviewed_tasks(pipeline.version)
    assert len(tasks) == len(reviewed)  # the other weights' review is left out
    out = tmp_path / "from-reviews.json"
    assert main(["calibrate", "--store", str(tmp_path / "reviews.sqlite3"), "--project", "5", "--out", str(out)]) == 0
    assert "reviewed tasks" in capsys.readouterr().err
    calibration = Calibration.load(out)
    assert calibration.provenance["project"] == "5" and calibration.provenance["reviewed_tasks"] == len(reviewed)
    assert main(["calibrate", "--store", str(tmp_path / "reviews.sqlite3"), "--project", "6", "--out",
                 str(tmp_path / "none.json")]) == 2
    assert "no reviews of predictions by" in capsys.readouterr().err and not (tmp_path / "none.json").exists()
    outcomes = [judge(r, None) for r in held_out]
    raw, calibrated = metrics(scored(outcomes, None)), metrics(scored(outcomes, calibration))
    assert calibrated["region_ece"] < raw["region_ece"] and calibrated["task_ece"] < raw["task_ece"]


def test_calibrate_needs_truth_or_a_store(tmp_path: Path, capsys) -> None:
    assert main(["calibrate", "--out", str(tmp_path / "x.json")]) == 2
    assert "give --images and --truth" in capsys.readouterr().err
    assert main(["calibrate", "--store", str(tmp_path / "none.sqlite3"), "--out", str(tmp_path / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_evidence_of_each_shown_region() -> None:
    from openautoglm.converters import Box, Region, Shape
    from openautoglm.model.scores.scoring import RegionEvidence, region_evidence

    regions = [Region("cat", Shape.BOX, Box(10, 20, 30, 40), score=0.4), Region("dog", Shape.BOX, Box(0, 0, 50, 25),
                                                                                score=0.9)]
    first, second = region_evidence(regions, 100, 50, [0.7, None])
    assert first == RegionEvidence(0.4, None, 0.7, relative_area=400 / 5000, aspect=1.0, border_distance=10 / 50,
                                   rank=1, label="cat")
    assert second.rank == 0 and second.aspect == 2.0 and second.border_distance == 0.0 and second.mask_score is None
