"""The mask-heavy conversions over processes give the files one process gives, and an error or a
skipped element in a process is reported as in one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openautoglm.cli.main import main
from openautoglm.converters import Dataset, Mask, Region, Shape, load, parallel, save
from openautoglm.converters.types import AnnotatedImage, ImageRecord


def _masks_dataset(images: int = 40) -> Dataset:
    rng = np.random.default_rng(0)
    items = []
    for index in range(images):
        bitmap = np.zeros((48, 64), dtype=bool)
        x, y = rng.integers(0, 40), rng.integers(0, 30)
        bitmap[y:y + 15, x:x + 20] = True
        items.append(AnnotatedImage(ImageRecord(index + 1, f"{index:03d}.jpg", 64, 48),
                                    [Region("cat", Shape.MASK, mask=Mask.from_array(bitmap))]))
    return Dataset(items=items).with_all_labels()


def _files(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def pools(monkeypatch) -> list:
    """Every process pool started, with a pool for as few as one mask, and forking taken as safe
    (earlier tests of the session leave daemon threads running)."""
    monkeypatch.setattr(parallel, "MIN_MASKS", 1)
    monkeypatch.setattr(parallel, "_forking_is_safe", lambda: True)
    started = []

    class CountingPool(parallel.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            started.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", CountingPool)
    return started


@pytest.mark.parametrize("target", ["label_studio", "voc", "yolo"])
def test_writing_over_processes_gives_the_same_files(tmp_path: Path, pools: list, target: str) -> None:
    dataset = _masks_dataset()
    suffix = ".json" if target == "label_studio" else ""
    with parallel.using_workers(1):
        save(dataset, tmp_path / f"one{suffix}", target)
    assert pools == []
    with parallel.using_workers(2):
        save(dataset, tmp_path / f"two{suffix}", target)
    assert pools == [(2,)]  # the pool ran
    assert _files(tmp_path / f"two{suffix}") == _files(tmp_path / f"one{suffix}")


def test_reading_label_studio_over_processes_reports_errors_and_skips_as_one_process(tmp_path: Path, pools: list,
                                                                                       capsys) -> None:
    with parallel.using_workers(1):
        save(_masks_dataset(), tmp_path / "tasks.json", "label_studio")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    tasks[7]["annotations"][0]["result"][0]["value"]["brushlabels"] = []
    (tmp_path / "bad.json").write_text(json.dumps(tasks))
    with parallel.using_workers(1):
        single = load(tmp_path / "tasks.json", "label_studio")
    with parallel.using_workers(2):
        assert load(tmp_path / "tasks.json", "label_studio").items == single.items
    assert pools == [(2,)]
    assert main(["convert", str(tmp_path / "bad.json"), "--from", "label_studio", "--to", "coco",
                 str(tmp_path / "out.json"), "--workers", "2"]) == 2
    assert "task 7 (id 8): annotations[0].result[0]: value.brushlabels is empty" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "bad.json"), "--from", "label_studio", "--to", "coco",
                 str(tmp_path / "out.json"), "--workers", "2", "--skip-invalid"]) == 0
    assert "task 7 (id 8): annotations[0].result[0]" in capsys.readouterr().err
    assert len(pools) == 3
    assert len(json.loads((tmp_path / "out.json").read_text())["annotations"]) == 39


def test_no_process_is_forked_while_another_thread_runs(tmp_path: Path, monkeypatch) -> None:
    """Forking while another thread may hold a lock is unsafe: the work stays in this process."""
    import threading

    monkeypatch.setattr(parallel, "MIN_MASKS", 1)
    started = []
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", lambda *args, **kwargs: started.append(args))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with parallel.using_workers(2):
            save(_masks_dataset(), tmp_path / "out.json", "label_studio")
    finally:
        stop.set()
        other.join()
    assert started == [] and len(json.loads((tmp_path / "out.json").read_text())) == 40
