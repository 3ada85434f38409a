"""Where `label-studio prelabel` predicts its pages of tasks: in this process, in `--workers N`
processes (spawned, each loading the pipeline once), or on Ray actors (`--engine ray`). Each
engine takes a page (Label Studio tasks and the project's labelling config) and gives a future of
its import entries; at most two pages per worker are in flight, so memory stays flat however
large the project. Every worker reaches Label Studio as this process does (LABEL_STUDIO_URL,
LABEL_STUDIO_API_KEY, OPENAUTOGLM_* settings)."""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Protocol

from openautoglm.backends.label_studio.prelabel import PagePrediction


class PageEngine(Protocol):
    model_version: str
    slots: int  # pages it works on at once

    def submit(self, tasks: list[dict], config: str) -> Future: ...  # of a PagePrediction

    def close(self) -> None: ...


def open_engine(model: str | None, project: str, workers: int = 1, engine: str = "local",
                ray_address: str | None = None):
    if engine == "ray":
        return RayEngine(model, project, workers if workers > 1 else None, ray_address)
    if workers > 1:
        return ProcessEngine(model, project, workers)
    return LocalEngine(model, project)


def build_page_predictor(model: str | None, project: str):
    """A PagePredictor as the server builds its Predictor (one per process), scoring with the
    project's own calibration where the server refitted one (OPENAUTOGLM_HOME, or a PostgreSQL
    store's), so the predictions carry the version the server would give them."""
    from openautoglm.backends.label_studio.client import LabelStudioClient
    from openautoglm.backends.label_studio.images import ImageFetcher
    from openautoglm.backends.label_studio.predictor import Predictor
    from openautoglm.backends.label_studio.prelabel import PagePredictor
    from openautoglm.backends.label_studio.project_calibrations import ProjectCalibrations, calibrations_folder
    from openautoglm.backends.settings import Settings
    from openautoglm.model.inference.pipeline import Pipeline
    from openautoglm.model.reviews.database import is_url
    from openautoglm.model.reviews.store import ReviewStore

    settings = Settings.from_env()
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key, settings.fetch_timeout_s)
    pipeline = Pipeline.load(model or settings.model, settings=settings.models)
    shared = ReviewStore(settings.store_path) if is_url(settings.store_path) else None
    calibrations = None if settings.calibration_pinned else \
        ProjectCalibrations(pipeline, calibrations_folder(settings.home, pipeline.name), shared)
    return PagePredictor(Predictor(pipeline, ImageFetcher(settings, client), settings.batch_size, settings.synonyms,
                                   calibrations=calibrations), project)


class LocalEngine:
    slots = 1

    def __init__(self, model: str | None, project: str):
        self.predictor = build_page_predictor(model, project)
        self.model_version = self.predictor.model_version

    def submit(self, tasks: list[dict], config: str) -> Future:
        future: Future = Future()
        try:
            future.set_result(self.predictor(tasks, config))
        except Exception as error:  # noqa: BLE001 - raised where the result is read, as with the other engines
            future.set_exception(error)
        return future

    def close(self) -> None:
        pass


_worker_predictor = None  # in a worker process: its PagePredictor, or why it could not be built


def _start_worker(model: str | None, project: str) -> None:
    global _worker_predictor
    try:
        _worker_predictor = build_page_predictor(model, project)
    except Exception as error:  # noqa: BLE001 - raised with its message by the first page, in the parent
        _worker_predictor = error


def _predict_page(tasks: list[dict] | None, config: str = ""):
    if isinstance(_worker_predictor, Exception):
        raise _worker_predictor
    return _worker_predictor.model_version if tasks is None else _worker_predictor(tasks, config)


class ProcessEngine:
    def __init__(self, model: str | None, project: str, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawned: a forked copy of a loaded model's threads and handles is not safe
        self.pool = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _start_worker, (model, project))
        self.slots = 2 * workers
        self.model_version = self.pool.submit(_predict_page, None).result()

    def submit(self, tasks: list[dict], config: str) -> Future:
        return self.pool.submit(_predict_page, tasks, config)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class RayEngine:
    """One actor per CPU slot of the cluster (or `workers`), each holding a pipeline; pages go to
    the actors in turn. RAY_ADDRESS (or --ray-address) joins a cluster, else a local Ray starts."""

    def __init__(self, model: str | None, project: str, workers: int | None, address: str | None):
        import logging

        import ray

        self.ray, self.ours = ray, not ray.is_initialized()
        if self.ours:
            passed = ("OPENAUTOGLM_", "LABEL_STUDIO_")
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR,
                     runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith(passed)}})
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(_RayPagePredictor)
        self.actors = [actor.remote(model, project) for _ in range(count)]
        self.slots, self._next = 2 * count, 0
        self.model_version = ray.get(self.actors[0].version.remote())

    def submit(self, tasks: list[dict], config: str) -> Future:
        actor = self.actors[self._next % len(self.actors)]
        self._next += 1
        return actor.predict.remote(tasks, config).future()

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.ours:
            self.ray.shutdown()


class _RayPagePredictor:
    def __init__(self, model: str | None, project: str):
        self.predictor = build_page_predictor(model, project)

    def version(self) -> str:
        return self.predictor.model_version

    def predict(self, tasks: list[dict], config: str) -> PagePrediction:
        return self.predictor(tasks, config)
