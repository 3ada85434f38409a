"""Dynamic batching: concurrent /predict requests are grouped into one model batch, each answer
still belongs to its own task; off by default on CPU."""

from __future__ import annotations

import threading
import time

import pytest
from PIL import Image

from openautoglm.backends.batching import DynamicBatcher
from openautoglm.backends.settings import Settings, batch_wait_ms
from openautoglm.converters import Box, Region, Shape
from openautoglm.model.inference.settings import ModelSettings

from .conftest import FakePipeline

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="Cat"/></RectangleLabels></View>')


class SlowPipeline(FakePipeline):
    """A fixed cost per call; one box per image, as wide as half that image and 10 px high, so an
    answer given for another task's image shows (its width in percent is not 50)."""

    def propose(self, images, labels, synonyms=None):
        time.sleep(0.05)
        self.calls.append((len(images), list(labels), dict(synonyms or {})))
        return [[Region(labels[0], Shape.BOX, Box(0, 0, image.size[0] / 2, 10), score=0.8)] for image in images]


def _all_at_once(call, count: int, pipeline) -> None:
    """`call(n)` for n < count from as many threads at once; the model saw them in fewer batches."""
    threads = [threading.Thread(target=call, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pipeline.calls) < count and sum(size for size, _, _ in pipeline.calls) == count  # grouped


def test_concurrent_requests_share_model_batches_and_keep_their_own_answers(make_client, image_server,
                                                                               monkeypatch) -> None:
    from openautoglm.backends.label_studio.images import ImageFetcher

    # each task's image has its own size (in its URL), so an answer shows which image it came from
    monkeypatch.setattr(ImageFetcher, "fetch", lambda self, url: Image.new("RGB", tuple(
        int(v) for v in url.rsplit("/", 1)[1].split(".")[0].split("x")), "green"))
    pipeline = SlowPipeline()
    client = make_client(pipeline, batch_wait_ms=200, max_batch=8)
    sizes = [(40 + 8 * n, 30 + 4 * n) for n in range(8)]
    answers: dict[int, dict] = {}

    def ask(n: int) -> None:
        body = {"tasks": [{"id": n, "data": {"image": f"{image_server.url}/{sizes[n][0]}x{sizes[n][1]}.png"}}],
                "label_config": CONFIG}
        answers[n] = client.post("/predict", json=body).get_json()["results"][0]

    _all_at_once(ask, 8, pipeline)
    for n, answer in answers.items():
        (region,) = answer["result"]
        assert (region["original_width"], region["original_height"]) == sizes[n] and region["id"].startswith(f"{n}-")
        assert region["value"]["width"] == pytest.approx(50) and region["value"]["height"] == pytest.approx(
            1000 / sizes[n][1])


def test_a_batch_that_fails_fails_each_of_its_requests_and_the_batcher_lives_on() -> None:
    calls = []

    def run(images, labels, synonyms, calibration):
        calls.append(len(images))
        if "boom" in labels:
            raise RuntimeError("model failed")
        return [f"{label}:{image}" for image in images for label in labels[:1]]

    batcher = DynamicBatcher(run, max_batch=4, max_wait_ms=100, lock=threading.Lock())
    errors, results = [], {}

    def ask(name, images, labels):
        try:
            results[name] = batcher.predict(images, labels, {})
        except RuntimeError as error:
            errors.append((name, str(error)))

    threads = [threading.Thread(target=ask, args=("a", [1, 2], ["cat"])),
               threading.Thread(target=ask, args=("b", [3], ["cat"])),
               threading.Thread(target=ask, args=("c", [4], ["boom"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"a": ["cat:1", "cat:2"], "b": ["cat:3"]}  # grouped by labels, split back in order
    assert errors == [("c", "model failed")] and sorted(calls) == [1, 3]
    assert batcher.predict([5], ["cat"], {}) == ["cat:5"]


def test_batching_is_off_on_cpu_and_on_for_cuda_unless_set() -> None:
    assert batch_wait_ms(Settings(models=ModelSettings(device="cpu"))) == 0.0
    assert batch_wait_ms(Settings(models=ModelSettings(device="cuda:1"))) == 10.0
    assert batch_wait_ms(Settings(models=ModelSettings(device="cpu"), batch_wait_ms=5)) == 5.0
    assert batch_wait_ms(Settings.from_env({"OPENAUTOGLM_BATCH_WAIT_MS": "0", "OPENAUTOGLM_DEVICE": "cuda"})) == 0.0


def test_concurrent_cvat_invocations_share_model_batches_and_keep_their_own_answers(make_client) -> None:
    """CVAT auto-annotation invokes the function once per frame, from several workers at once:
    with batching on, those calls are grouped like /predict requests, and each frame gets its own
    shapes (the box is half its own image's width)."""
    import base64
    import io

    class ClosedSetSlowPipeline(SlowPipeline):
        vocabulary = ("Cat",)

    pipeline = ClosedSetSlowPipeline()
    client = make_client(pipeline, batch_wait_ms=200, max_batch=8)
    widths = [40 + 8 * n for n in range(8)]
    answers: dict[int, list] = {}

    def invoke(n: int) -> None:
        buffer = io.BytesIO()
        Image.new("RGB", (widths[n], 30), "green").save(buffer, "PNG")
        body = {"image": base64.b64encode(buffer.getvalue()).decode(), "threshold": 0.5}
        answers[n] = client.post("/api/function_invocations", json=body,
                                 headers={"x-nuclio-function-name": "openautoglm-yolo"}).get_json()

    _all_at_once(invoke, 8, pipeline)
    for n, shapes in answers.items():
        (shape,) = shapes
        assert shape["label"] == "Cat" and shape["points"] == pytest.approx([0, 0, widths[n] / 2, 10])


def test_requests_of_projects_with_different_calibrations_are_never_one_batch() -> None:
    """Each batch is scored with one calibration: a project's refit and the pipeline's own are
    grouped apart, and each request gets its own calibration's scores."""
    from types import SimpleNamespace

    from openautoglm.model.scores.calibration import CURRENT

    batches = []

    def run(images, labels, synonyms, calibration):
        batches.append((sorted(images), calibration if isinstance(calibration, str) else calibration.digest))
        return [f"{image}@{batches[-1][1]}" for image in images]

    batcher = DynamicBatcher(run, max_batch=8, max_wait_ms=200, lock=threading.Lock())
    refit, results = SimpleNamespace(digest="project-3"), {}
    asks = [("a", [1, 2], CURRENT), ("b", [3], refit), ("c", [4], CURRENT), ("d", [5], refit)]
    threads = [threading.Thread(target=lambda n=n, i=i, c=c: results.__setitem__(n, batcher.predict(i, ["cat"], {}, c)))
               for n, i, c in asks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"a": ["1@current", "2@current"], "b": ["3@project-3"], "c": ["4@current"], "d": ["5@project-3"]}
    assert sorted(batches) == [([1, 2, 4], "current"), ([3, 5], "project-3")]
