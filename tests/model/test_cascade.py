"""A pipeline's cascade: the second stage looks only at the images scored below its threshold, its
evidence (agreement, uncovered finds) is scored by the calibration's cascade maps, kept in the
review store for refitting and re-scoring, and measured by `openautoglm eval`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openautoglm.cli.main import main
from openautoglm.converters import Box, Region, Shape
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.cascade import CascadeSpec, SecondStage, evidence
from openautoglm.model.inference.pipeline import Pipeline, PipelineSpec
from openautoglm.model.reviews.refit import reviewed_outcomes
from openautoglm.model.reviews.store import ReviewStore, match
from openautoglm.model.scores.calibration import Calibration
from openautoglm.model.scores.evaluation import Outcome
from openautoglm.model.scores.fitting import fit_cascade, fit_outcomes
from openautoglm.model.scores.scoring import ImageEvidence, RegionEvidence, score


def _box(label: str, x: float, score: float) -> Region:
    return Region(label, Shape.BOX, Box(x, 0, x + 10, 10), score=score)


class Counting:
    """A proposer wrapper that remembers how many images it was given."""

    def __init__(self, proposer):
        self.proposer, self.spec, self.seen = proposer, proposer.spec, 0

    def propose(self, images, labels, synonyms=None):
        self.seen += len(images)
        return self.proposer.propose(images, labels, synonyms)


@pytest.mark.parametrize("cascade, reason", [({"model": "yolox-nano"}, "below"), ({"below": 0.5}, "model"),
                                             ({"model": "yolox-nano", "below": 1.5}, "below"), ("yolox", "mapping")])
def test_a_bad_cascade_entry_is_one_clear_error(cascade, reason: str) -> None:
    doc = {"version": 1, "proposers": [{"model": "yolov8n"}], "cascade": cascade}
    with pytest.raises(ModelError, match=f"my.yaml: .*cascade.*{reason}|my.yaml: .*{reason}.*cascade"):
        PipelineSpec.from_dict(doc, "my.yaml")


def test_agreement_is_the_best_same_label_overlap_and_the_rest_are_misses() -> None:
    shown = [_box("car", 0, 0.9), _box("car", 100, 0.6), _box("dog", 200, 0.5)]
    found = [_box("car", 1, 0.7), _box("car", 0, 0.8), _box("cat", 200, 0.9), _box("car", 300, 0.4)]
    agreement, misses = evidence(shown, found)
    assert agreement == [0.8, 0.0, 0.0]
    assert [(m.label, m.score) for m in misses] == [("cat", 0.9), ("car", 0.4)]


def _synthetic_outcomes(count: int, seed: int = 0) -> list[Outcome]:
    """Regions whose second-stage agreement says whether they are right, better than their raw score."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(count):
        correct = rng.random(3) < 0.6
        scores = np.clip(0.3 + 0.2 * correct + rng.normal(0, 0.15, 3), 0.26, 0.99)
        agreement = np.where(correct, rng.uniform(0.5, 0.9, 3), rng.uniform(0.0, 0.3, 3))
        missed = int(rng.random() < 0.2)
        outcomes.append(Outcome(scores, correct, [], missed, agreement, [0.8] if missed else []))
    return outcomes


def test_cascade_maps_learn_from_agreement_and_survive_a_file_round_trip(tmp_path: Path) -> None:
    outcomes = _synthetic_outcomes(200)
    calibration = fit_outcomes(outcomes, outcomes, "p@1", 0.25, cascade_below=1.0)
    maps = calibration.cascade
    assert maps is not None and maps.region_coef[1] > 0  # agreeing regions are more likely right
    assert maps.task_coef[2] < 0  # an uncovered second-stage find makes an edit more likely
    calibration.save(tmp_path / "c.json")
    loaded = Calibration.load(tmp_path / "c.json")
    assert loaded == calibration and loaded.digest == calibration.digest
    assert loaded.digest != dataclasses.replace(calibration, cascade=None).digest
    # only the tasks the second stage saw count; too few of them: no maps
    assert fit_cascade(outcomes, outcomes[:10], dataclasses.replace(calibration, cascade=None), 1.0) is None
    without = [dataclasses.replace(o, agreement=None, second_misses=None) for o in outcomes]
    assert fit_outcomes(without, without, "p@1", 0.25, cascade_below=1.0).cascade is None


def test_a_calibration_file_without_a_cascade_keeps_its_digest() -> None:
    from importlib import resources

    calibrations = resources.files("openautoglm.model.scores.calibrations")
    shipped = Calibration.load(Path(str(calibrations.joinpath("yolo.json"))))
    assert shipped.cascade is None and shipped.digest == "eb0df49182a1"
    cascade = Calibration.load(Path(str(calibrations.joinpath("yolo-cascade.json"))))
    assert cascade.cascade is not None and cascade.pipeline_version.startswith("yolo-cascade+yolov8n@")
    probabilities, task = score(ImageEvidence.of_scores([0.5], [], [0.9], []), cascade)
    disagreeing, _ = score(ImageEvidence.of_scores([0.5], [], [0.0], []), cascade)
    assert probabilities[0] > disagreeing[0]  # the second stage's agreement raises a region's probability
    first_stage = score(ImageEvidence.of_scores([0.5], []), cascade)[0]
    assert first_stage == pytest.approx(cascade.region_probability([0.5]).tolist())


@pytest.fixture(scope="module")
def cascade_pipeline(shared: Path):
    import os

    os.environ["OPENAUTOGLM_MODEL_DIR"] = str(shared / "models")
    return Pipeline.load("yolo-cascade")


@pytest.mark.slow
def test_the_second_stage_runs_only_below_its_threshold(cascade_pipeline, shared: Path) -> None:
    from openautoglm.converters.files import load_displayed

    pipeline = cascade_pipeline
    images = [load_displayed(p) for p in sorted((shared / "data" / "coco128-train" / "images").rglob("*.jpg"))[:8]]
    second, pipeline.second_stage = pipeline.second_stage, None
    try:
        first = pipeline.predict(images, [])
    finally:
        pipeline.second_stage = second
    below = float(np.median([p.score for p in first]))
    counting = Counting(second.proposer)
    pipeline.second_stage = SecondStage(CascadeSpec(second.spec.proposer, below), counting)
    try:
        cascaded = pipeline.predict(images, [])
    finally:
        pipeline.second_stage = second
    unsure = [p.score < below for p in first]
    assert 0 < sum(unsure) < len(images) and counting.seen == sum(unsure)
    for before, after, looked in zip(first, cascaded, unsure):
        assert [r.box for r in after.regions] == [r.box for r in before.regions]
        if not looked:
            assert after.second_misses is None and after.score == before.score and after.second_stage_seconds == 0
            continue
        agreement = [e.agreement for e in after.evidence.regions]
        assert [e.detector_score for e in after.evidence.regions] == [r.score for r in after.regions]
        evidence = ImageEvidence.of_scores([r.score for r in after.regions], [r.score for r in after.near_misses],
                                           agreement, [r.score for r in after.second_misses])
        probabilities, task = score(evidence, pipeline.calibration)
        assert after.score == pytest.approx(task)
        assert [r.calibrated_score for r in after.regions] == pytest.approx(probabilities)
        assert after.second_stage_seconds > 0


@pytest.mark.parametrize("second", ["owlv2", "qwen3_vl"])
def test_an_open_vocabulary_or_vlm_second_stage(tiny, second: str, tmp_path_factory) -> None:
    """Tiny random models: the plumbing, not the quality (their boxes are noise)."""
    pytest.importorskip("transformers")
    from tests.model import tiny_models

    stage = str(tiny["owlv2"]) if second == "owlv2" else str(tiny_models.qwen3_vl(tmp_path_factory.mktemp("vlm")))
    options = {"conf": 0.0} if second == "owlv2" else {"max_new_tokens": 12}
    spec = PipelineSpec("tiny-cascade", ({"model": str(tiny["owlv2"]), "conf": 0.0},), None, {},
                        CascadeSpec({"model": stage, **options}, 1.0))
    pipeline = Pipeline(spec, calibration=None)
    images = [Image.new("RGB", (300, 200), "red"), Image.new("RGB", (120, 160), "blue")]
    predictions = pipeline.predict(images, ["cat", "dog"], second_stage_on_all=True)  # random scores: often 1.0
    assert pipeline.version.endswith(pipeline.second_stage.proposer.spec.source)
    for prediction in predictions:
        assert prediction.regions and prediction.second_misses is not None
        for region in prediction.evidence.regions:
            assert 0.0 <= region.agreement <= 1.0
        assert all(m.label in ("cat", "dog") for m in prediction.second_misses)


def test_the_review_store_keeps_the_second_stages_evidence_for_refitting(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "reviews.db")
    seen = [_box("car", 0, 0.8), _box("car", 100, 0.4)]
    unseen = [_box("car", 0, 0.9)]
    looked = ImageEvidence((RegionEvidence(0.8, 0.7), RegionEvidence(0.4, 0.0)), (0.1,), (0.6,))
    store.save_predictions("p@1+calibration-a", [(1, seen, looked, 0.3),
                                                 (2, unseen, ImageEvidence.of_scores([0.9]), 0.9)])
    for task in (1, 2):
        store.record(f"a{task}", task, "p@1+calibration-a", match(store.prediction(task)[1], [_box("car", 0, 1.0)]))
    first, other = reviewed_outcomes(store, "p@1")
    assert first.agreement.tolist() == [0.7, 0.0] and first.second_misses == [0.6]
    assert first.correct.tolist() == [True, False]
    assert other.agreement is None and other.second_misses is None


@pytest.mark.slow
def test_eval_reports_the_cascade_share_and_cost(shared: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    root = shared / "data" / "coco-val100"
    out = tmp_path / "report"
    assert main(["eval", "--model", "yolo-cascade", "--images", str(root / "images"), "--truth",
                 str(root / "annotations" / "instances.json"), "--labels", "person", "car", "--out", str(out)]) == 0
    entry = json.loads((out / "report.json").read_text())["label_sets"]["project"]
    cost, mean = entry["cascade_cost"], entry["cross_validated"]["mean"]
    assert 0 < cost["second_stage_share"] < 1 and cost["second_stage_share"] == mean["cascade"]["second_stage_share"]
    assert cost["with_cascade_seconds_per_image"] > cost["first_stage_seconds_per_image"] > 0
    assert mean["calibrated"]["second_stage_share"] == 0
    assert "Cascade: the second stage looks at tasks scored below" in (out / "report.md").read_text()
    assert "| mean | cascade |" in (out / "report.md").read_text()
