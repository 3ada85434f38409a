"""The server's app factory and its one composition root: settings read once, the model loaded
once per worker process, then injected into the protocol adapters."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask, g, request

from openautoglm.model.reviews.store import ReviewStore

from .cvat.functions import FunctionCatalog
from .cvat.routes import blueprint as cvat_blueprint
from .label_studio.client import LabelStudioClient
from .label_studio.images import ImageFetcher
from .label_studio.job_runner import JobRunner
from .label_studio.metrics import Metrics
from .label_studio.predictor import Predictor
from .label_studio.project_calibrations import ProjectCalibrations, calibrations_folder
from .label_studio.project_guard import ProjectGuard
from .label_studio.project_version import ProjectVersionSync
from .label_studio.refitter import Refitter
from .label_studio.request_path import PredictRequests
from .label_studio.rescore import QueueRescorer
from .label_studio.review_events import ReviewWorker
from .label_studio.review_loop import ReviewLoop
from .label_studio.routes import blueprint, register_errors
from .served import ServedPipeline
from .settings import Settings, batch_wait_ms

log = logging.getLogger(__name__)
access_log = logging.getLogger("openautoglm.access")


def create_app(settings: Settings | None = None, pipeline: ServedPipeline | None = None) -> Flask:
    """The one place the server is put together: settings read once, the pipeline loaded once per
    worker process, the Label Studio client, the request path and the review loop built here and
    handed to the routes."""
    if not logging.getLogger().handlers:  # under gunicorn nothing configures Python logging for us
        logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    settings = settings or Settings.from_env()
    metrics = Metrics()
    pipeline = pipeline or _load_pipeline(settings, metrics)
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key, settings.fetch_timeout_s)
    version_sync = ProjectVersionSync(client, settings.set_project_version and client.writable)
    store = ReviewStore(settings.store_path)
    calibrations = None if settings.calibration_pinned else \
        ProjectCalibrations(pipeline, calibrations_folder(settings.home, pipeline.name), store)
    predictor = Predictor(pipeline, ImageFetcher(settings, client), settings.batch_size, settings.synonyms,
                          batch_wait_ms(settings), settings.max_batch, calibrations)
    log.info("serving %s%s", pipeline.model_version, "" if calibrations is None else
             f" (a project with reviews of its own: its own refit, in {calibrations.folder})")
    guard = ProjectGuard(store, calibrations, version_sync)  # one store, one Label Studio's projects
    reviews = _review_loop(settings, store, calibrations, client, version_sync, metrics, guard)
    requests = PredictRequests(predictor, store, metrics, version_sync, client, settings.accept_above,
                               settings.audit_share, settings.predict_budget_s)
    app = Flask("openautoglm")
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    runner = JobRunner(requests, store)  # every worker works on every job's pages
    app.extensions["openautoglm"] = Services(pipeline, predictor, requests, runner, store, reviews, version_sync)
    register_errors(app)
    if settings.access_log:
        _log_requests(app)
    app.register_blueprint(blueprint(settings, requests, reviews, metrics, guard))
    app.register_blueprint(cvat_blueprint(_catalog(settings, pipeline), predictor.calls, settings.models.max_pixels))
    return app


@dataclass(frozen=True)
class Services:
    """What create_app built, for whoever holds the app (tests wait on the review loop through it)."""
    pipeline: ServedPipeline
    predictor: Predictor
    requests: PredictRequests
    runner: JobRunner
    store: ReviewStore
    reviews: ReviewLoop
    version_sync: ProjectVersionSync


def _load_pipeline(settings: Settings, metrics: Metrics) -> ServedPipeline:
    from openautoglm.model.inference.pipeline import Pipeline

    started = time.perf_counter()
    pipeline = Pipeline.load(settings.model, settings=settings.models)
    metrics.model_load.set(time.perf_counter() - started)
    log.info("loaded pipeline %s in %.1f s", pipeline.version, time.perf_counter() - started)  # its weights
    return pipeline


def _review_loop(settings: Settings, store: ReviewStore, calibrations: ProjectCalibrations | None,
                 client: LabelStudioClient, version_sync: ProjectVersionSync, metrics: Metrics,
                 guard: ProjectGuard) -> ReviewLoop:
    """Started here, in every worker: the webhook worker, and with per-project calibrations the
    refitter and the re-scorer it calls after each project's refit."""
    if calibrations is None:
        return ReviewLoop(store, ReviewWorker(store, guard=guard))
    rescorer = QueueRescorer(client, store, calibrations, settings.accept_above, settings.audit_share, version_sync,
                             metrics.rescored)
    refitter = Refitter(store, calibrations, settings.refit_every, calibrations.pipeline.display_threshold,
                        rescorer.rescore)
    return ReviewLoop(store, ReviewWorker(store, refitter, guard), refitter, rescorer)


def _log_requests(app: Flask) -> None:
    """One line per request, as operators expect of a server: method, path, status, tasks, time."""

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        try:  # parsed once (Flask caches it); a body refused as too large or too deep is not read again
            body = request.get_json(silent=True) if request.is_json and response.status_code < 400 else None
        except Exception:  # noqa: BLE001 - a log line must not turn an answer into an error
            body = None
        tasks = body.get("tasks") if isinstance(body, dict) else None
        count = f" tasks={len(tasks)}" if isinstance(tasks, list) else ""
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        access_log.info("%s %s %d%s %.1f ms", request.method, request.path, response.status_code, count, elapsed)
        return response


def _catalog(settings: Settings, loaded) -> FunctionCatalog:
    """CVAT functions: the served pipeline, already loaded, and any others named in settings."""

    def load(name: str):
        if name == settings.model:
            return loaded
        from openautoglm.model.inference.pipeline import Pipeline

        return Pipeline.load(name, settings=settings.models)

    names = list(dict.fromkeys([settings.model, *settings.cvat_pipelines]))
    return FunctionCatalog(names, load, settings.cvat_labels)
