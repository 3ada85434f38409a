"""The report page (`openautoglm report --html`, `GET /report`): its figures and numbers, and what a
person sees of it in a real browser (Debian's chromium, headless)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openautoglm.cli.main import main
from openautoglm.converters import Box, Region
from openautoglm.model.reviews.report_page import report_html
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.scoring import ImageEvidence
from tests.test_review_report import _store

BLUE, RED = (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)  # matplotlib's first colour, and the threshold lines'


def _with_queue_and_refits(path: Path) -> ReviewStore:
    """The ten reviewed tasks of test_review_report, five open tasks of project 3 (two scored at
    least 0.95) and two refits of project 3."""
    store = _store(path)
    for task, score in zip(range(100, 105), (0.2, 0.5, 0.7, 0.96, 0.99)):
        store.save_predictions("yolo+w@1+calibration-abc", [(task, [Region("cat", box=Box(0, 0, 10, 10), score=score)],
                                                             ImageEvidence.of_scores([score], []), score)], project="3")
    store.calibrations.log_refit("yolo+w@1", "3", "done", "abc")
    store.calibrations.log_refit("yolo+w@1", "3", "failed")
    return store


def test_the_page_says_what_is_open_accepted_and_measured(tmp_path: Path) -> None:
    store = _with_queue_and_refits(tmp_path / "r.sqlite3")
    page = report_html(store, "3", accept_above=0.5)
    assert "Review report: project 3" in page
    # project 3: tasks 0-5 reviewed, all scored 0.9, task 5 needed an edit; five open tasks
    assert "<span class='key'>5</span> tasks open, of which <b>4</b> (80.0%) score at least 0.5" in page
    assert "<span class='key'>6</span> tasks reviewed" in page
    assert "needed an edit <b>16.7%</b> (95 % interval 3.0%–56.4%)" in page
    assert "Refits: 1 done, 1 not." in page
    assert page.count("src=\"data:image/png;base64,") == 4 and "http" not in page  # nothing fetched from elsewhere
    everything = report_html(store)
    assert "Review report: every project" in everything and "<span class='key'>10</span> tasks reviewed" in everything


def test_an_empty_store_gives_a_page_without_nan(tmp_path: Path) -> None:
    page = report_html(ReviewStore(tmp_path / "empty.sqlite3"), "7")
    assert "nan" not in page.lower() and "No reviewed task scored at least 0.95 yet" in page
    assert "<span class='key'>0</span> tasks open" in page


def test_report_command_writes_the_page(tmp_path: Path, capsys) -> None:
    _with_queue_and_refits(tmp_path / "r.sqlite3")
    out = tmp_path / "report.html"
    assert main(["report", "--store", str(tmp_path / "r.sqlite3"), "--project", "3", "--html", str(out)]) == 0
    assert f"report page: {out}" in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>") and "Review report: project 3" in out.read_text()


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium not found (Debian: apt-get install chromium; `make test` installs it as root)")
    return found


def test_a_browser_shows_the_figures(tmp_path: Path) -> None:
    """The page as a person sees it: chromium renders it offline, and the screenshot holds the four
    figures (matplotlib's blue of the plotted data and the red threshold lines), not broken images."""
    store = _with_queue_and_refits(tmp_path / "r.sqlite3")
    page = tmp_path / "report.html"
    page.write_text(report_html(store, "3", accept_above=0.5))
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1100,1500", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120, cwd=tmp_path)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (1500, 1100)

    def share(colour) -> float:
        return float((np.abs(pixels - colour).sum(axis=2) < 40).mean())

    assert share(BLUE) > 0.005, "the figures' data are not on the screen"
    assert share(RED) > 0.0001, "the threshold lines are not on the screen"
    assert share((255, 255, 255)) > 0.5  # a page, not an error screen
