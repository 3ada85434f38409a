"""`openautoglm report --store`: what reviewers did against the scores the backend gave."""

from __future__ import annotations

from pathlib import Path

import pytest

from openautoglm.cli.main import main
from openautoglm.converters import Box, Region
from openautoglm.model.reviews.store import ReviewStore, match
from openautoglm.model.reviews.summary import summary, wilson_interval
from openautoglm.model.scores.scoring import ImageEvidence


def _store(path: Path) -> ReviewStore:
    """Ten reviewed tasks, one cat predicted in each: tasks 0-5 scored 0.9 and right (task 5's
    reviewer added a missed dog), tasks 6-9 scored 0.1 and wrong (the reviewer moved the box).
    Tasks 0-5 are Label Studio project 3's, tasks 6-9 project 4's."""
    store = ReviewStore(path)
    for task in range(10):
        score = 0.9 if task < 6 else 0.1
        predicted = [Region("cat", box=Box(0, 0, 10, 10), score=score)]
        store.save_predictions("yolo+w@1+calibration-abc", [(task, predicted, ImageEvidence.of_scores([score], [0.1]),
                                                             score)], project="3.1700000000" if task < 6 else "4")
        human = [Region("cat", box=Box(0, 0, 10, 10) if task < 6 else Box(50, 50, 60, 60))]
        if task == 5:
            human.append(Region("dog", box=Box(20, 20, 30, 30)))
        store.record(f"a{task}", task, "yolo+w@1+calibration-abc", match(store.prediction(task)[1], human))
    return store


def test_bands_drift_and_the_accepted_error(tmp_path: Path) -> None:
    report = summary(_store(tmp_path / "r.sqlite3").reviewed_tasks(), accept_above=0.5)
    assert report["reviewed_tasks"] == 10
    bands = {b["band"]: b for b in report["bands"]}
    assert bands["0.0-0.2"] == {"band": "0.0-0.2", "tasks": 4, "edit_rate": 1.0}
    assert bands["0.8-1.0"]["tasks"] == 6 and bands["0.8-1.0"]["edit_rate"] == pytest.approx(1 / 6)
    accept = report["accept_above"]
    assert accept["tasks"] == 6 and accept["measured_error"] == pytest.approx(1 / 6)
    low, high = accept["error_interval_95"]
    assert low < 1 / 6 < high
    assert report["latest_region_ece"] == pytest.approx((6 * 0.1 + 4 * 0.1) / 10)


def test_wilson_interval() -> None:
    low, high = wilson_interval(0, 30)
    assert low == 0.0 and high == pytest.approx(0.114, abs=0.001)
    assert wilson_interval(5, 10) == pytest.approx((0.237, 0.763), abs=0.001)


def test_the_report_command(tmp_path: Path, capsys) -> None:
    _store(tmp_path / "r.sqlite3")
    assert main(["report", "--store", str(tmp_path / "r.sqlite3"), "--accept-above", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "reviewed tasks: 10" in out and "tasks scored >= 0.5: 6 reviewed, needed an edit 16.7%" in out
    assert main(["report", "--store", str(tmp_path / "r.sqlite3"), "--project", "4"]) == 0
    out = capsys.readouterr().out
    assert "reviewed tasks in project 4: 4" in out and "0.0-0.2              4            100%" in out
    assert main(["report", "--store", str(tmp_path / "missing.sqlite3")]) == 2
    assert main(["report", "--store", str(tmp_path / "r.sqlite3"), "--accept-above", "0.95"]) == 0
    out = capsys.readouterr().out
    assert "tasks scored >= 0.95: none reviewed yet, so no measured error" in out and "nan" not in out
    ReviewStore(tmp_path / "empty.sqlite3")
    assert main(["report", "--store", str(tmp_path / "empty.sqlite3"), "--accept-above", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "reviewed tasks: 0" in out and "nan" not in out
