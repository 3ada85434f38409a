"""`label-studio prelabel` with several pages in flight: every task imported once, in pages, with
a bounded number of pages in flight; the same from worker processes and Ray actors with the real
pipeline, and a second run (as after a kill) predicts nothing again."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from openautoglm.backends.label_studio.client import LabelStudioClient
from openautoglm.backends.label_studio.images import ImageFetcher
from openautoglm.backends.label_studio.predictor import Predictor
from openautoglm.backends.label_studio.prelabel import PagePredictor, prelabel_project
from openautoglm.backends.settings import Settings

from .conftest import FakePipeline

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="Cat"/></RectangleLabels></View>')


class ThreadEngine:
    """Pages predicted on two threads, counting how many were in flight at most."""

    slots = 2

    def __init__(self, predictor: PagePredictor):
        self.predictor, self.model_version = predictor, predictor.model_version
        self.pool, self.in_flight, self.most = ThreadPoolExecutor(2), 0, 0

    def submit(self, tasks: list[dict], config: str) -> Future:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        future = self.pool.submit(self.predictor, tasks, config)
        future.add_done_callback(lambda _: setattr(self, "in_flight", self.in_flight - 1))
        return future


def _project(image_server, count: int) -> None:
    image_server.label_config = CONFIG
    image_server.tasks = [{"id": n, "data": {"image": f"{image_server.url}/img.png"}} for n in range(1, count + 1)]


def _imported(image_server) -> list[int]:
    return [p["task"] for _, body in image_server.imported for p in body]


def test_pages_in_flight_are_bounded_and_each_task_imported_once(image_server) -> None:
    _project(image_server, 230)
    settings = Settings(label_studio_url=image_server.url, label_studio_api_key="legacy-key")
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key, 10)
    predictor = PagePredictor(Predictor(FakePipeline(), ImageFetcher(settings, client), batch_size=4), "7")
    engine = ThreadEngine(predictor)
    progress = []
    counts = prelabel_project(client, engine, "7", page_size=20, on_page=lambda c, total: progress.append(
        (c.skipped + c.imported, total)))
    assert sorted(_imported(image_server)) == list(range(1, 231))
    assert [len(body) for _, body in image_server.imported] == [20] * 11 + [10]  # one import per page
    assert 1 < engine.most <= engine.slots + 1
    assert (counts.tasks, counts.predicted, counts.imported, counts.failed) == (230, 230, 230, 0)
    assert progress[-1] == (230, 230) and all(a[0] <= b[0] for a, b in zip(progress, progress[1:]))
    assert all(p["result"] and p["model_version"] == predictor.model_version
               for _, body in image_server.imported for p in body)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_the_command_with_two_workers(engine, image_server, shared, monkeypatch, capsys) -> None:
    if engine == "ray":
        pytest.importorskip("ray", reason="ray is not installed (pip install 'openautoglm[ray]')")
    from openautoglm.cli.main import main
    from openautoglm.model.inference.pipeline import Pipeline

    _project(image_server, 45)
    for key, value in {"OPENAUTOGLM_MODEL_DIR": str(shared / "models"), "LABEL_STUDIO_URL": image_server.url,
                       "LABEL_STUDIO_API_KEY": "legacy-key", "OPENAUTOGLM_OFFLINE": "1"}.items():
        monkeypatch.setenv(key, value)
    command = ["label-studio", "prelabel", "--project", "7", "--page-size", "10", "--workers", "2", "--engine", engine]
    assert main(command) == 0
    assert "45 tasks, 0 already predicted" in capsys.readouterr().err
    assert sorted(_imported(image_server)) == list(range(1, 46))
    version = Pipeline.load("yolo").model_version
    assert {p["model_version"] for _, body in image_server.imported for p in body} == {version}
    assert main(command) == 0  # again, as after a kill: nothing is predicted twice
    assert "45 tasks, 45 already predicted" in capsys.readouterr().err and len(_imported(image_server)) == 45
