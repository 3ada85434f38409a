"""Per-label offsets on the region map (`model/scores/label_offsets.py`): a label drawn the
project's own way moves, the others stay on the pooled map; where labels do not differ, cross-
validation keeps no offsets; a calibration file keeps them and its digest is unchanged without."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from openautoglm.model.scores.calibration import Calibration
from openautoglm.model.scores.evaluation import Outcome
from openautoglm.model.scores.fitting import fit_outcomes, scored
from openautoglm.model.scores.label_offsets import fit_label_offsets

LABELS = ("car", "person", "banana")


def _outcomes(tasks: int, banana_rate: float, seed: int = 0) -> list[Outcome]:
    """Regions right as often as their score says, bananas `banana_rate` times as often."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(tasks):
        labels = tuple(rng.choice(LABELS, 4))
        scores = rng.uniform(0.25, 1.0, 4)
        rate = np.where(np.array(labels) == "banana", banana_rate, 1.0)
        outcomes.append(Outcome(scores, rng.uniform(size=4) < scores * rate, [], 0, labels=labels))
    return outcomes


def _identity_map() -> tuple[np.ndarray, np.ndarray]:
    return np.array([0.0, 1.0]), np.array([0.0, 1.0])


def test_a_label_drawn_another_way_moves_and_the_others_stay() -> None:
    offsets = fit_label_offsets(_outcomes(150, banana_rate=0.3), *_identity_map())
    assert offsets["banana"] < -1.0
    assert all(abs(offsets.get(label, 0.0)) < 0.3 for label in ("car", "person"))


def test_where_labels_do_not_differ_there_are_no_offsets() -> None:
    assert fit_label_offsets(_outcomes(150, banana_rate=1.0), *_identity_map()) == {}


def test_a_label_with_more_reviews_follows_them_further() -> None:
    few = fit_label_offsets(_outcomes(30, banana_rate=0.3, seed=1), *_identity_map())
    many = fit_label_offsets(_outcomes(400, banana_rate=0.3, seed=1), *_identity_map())
    assert many["banana"] < few.get("banana", 0.0) <= 0.0


def test_offsets_start_from_the_prior_calibrations() -> None:
    prior = {"banana": -1.5}
    assert fit_label_offsets(_outcomes(2, banana_rate=1.0), *_identity_map(), prior) == prior
    assert fit_label_offsets([], *_identity_map(), prior) == prior


def test_a_refit_scores_each_label_with_its_offset(tmp_path: Path) -> None:
    outcomes = _outcomes(200, banana_rate=0.3, seed=2)
    calibration = fit_outcomes(outcomes, outcomes, "yolo+test@1", 0.25)
    assert "banana" in calibration.label_offsets
    held_out = _outcomes(200, banana_rate=0.3, seed=3)
    bananas = np.concatenate([np.array(o.labels) == "banana" for o in held_out])
    values = scored(held_out, calibration)
    without = scored(held_out, dataclasses.replace(calibration, label_offsets={}))
    gap = abs(values["region_p"][bananas].mean() - values["region_correct"][bananas].mean())
    assert gap < abs(without["region_p"][bananas].mean() - without["region_correct"][bananas].mean()) / 2
    at = calibration.region_probability([0.8, 0.8], ["car", "banana"])
    assert at[1] < at[0]
    assert calibration.region_probability([0.8])[0] == np.interp(0.8, calibration.region_x, calibration.region_y)
    path = tmp_path / "c.json"
    calibration.save(path)
    assert Calibration.load(path) == calibration and Calibration.load(path).digest == calibration.digest
    plain = dataclasses.replace(calibration, label_offsets={})
    assert "label_offsets" not in plain.to_dict() and plain.digest != calibration.digest
