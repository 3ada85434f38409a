"""The server's app factory: settings read once, the model loaded once per worker process,
then injected into the protocol adapters."""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

from .label_studio.images import ImageFetcher
from .label_studio.predictor import Predictor
from .label_studio.project_version import ProjectVersionSync
from .label_studio.refitter import ServedCalibration, team_calibration_path
from openautoglm.model.reviews.store import ReviewStore
from .label_studio.routes import Metrics, blueprint, register_errors
from .cvat.functions import FunctionCatalog
from .cvat.routes import blueprint as cvat_blueprint
from .settings import Settings, batch_wait_ms

log = logging.getLogger(__name__)
access_log = logging.getLogger("openautoglm.access")


def create_app(settings: Settings | None = None, pipeline=None) -> Flask:
    if not logging.getLogger().handlers:  # under gunicorn nothing configures Python logging for us
        logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    settings = settings or Settings.from_env()
    metrics = Metrics()
    if pipeline is None:
        from openautoglm.model.inference.pipeline import Pipeline

        started = time.perf_counter()
        pipeline = Pipeline.load(settings.model, settings.device)
        metrics.model_load.set(time.perf_counter() - started)
        log.info("loaded pipeline %s in %.1f s", pipeline.model_version, time.perf_counter() - started)
    fetcher = ImageFetcher(settings)
    predictor = Predictor(pipeline, fetcher, settings.batch_size, settings.synonyms, batch_wait_ms(settings),
                          settings.max_batch)
    version_sync = ProjectVersionSync(settings.label_studio_url, fetcher.auth_header,
                                      settings.set_project_version and bool(settings.label_studio_api_key))
    app = Flask("openautoglm")
    app.json.sort_keys = False
    app.extensions["openautoglm.pipeline"] = pipeline
    register_errors(app)
    if settings.access_log:
        _log_requests(app)
    store = ReviewStore(settings.store_path)
    served = _served_calibration(settings, pipeline, predictor, store)
    if served is not None:
        app.before_request(served.refresh)  # a refit by any worker is served from its next request on
    app.register_blueprint(blueprint(settings, predictor, store, metrics, version_sync, served))
    app.register_blueprint(cvat_blueprint(_catalog(settings, pipeline), predictor.calls))
    return app


def _served_calibration(settings: Settings, pipeline, predictor: Predictor,
                        store: ReviewStore) -> ServedCalibration | None:
    """The team's refitted calibration takes over from the loaded one, unless OPENAUTOGLM_CALIBRATION
    pins it (or the pipeline object does not calibrate)."""
    if settings.calibration_pinned:
        return None
    return ServedCalibration(pipeline, team_calibration_path(settings.home, pipeline.name), store)


def _log_requests(app: Flask) -> None:
    """One line per request, as operators expect of a server: method, path, status, tasks, time."""

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        body = request.get_json(silent=True) if request.is_json else None  # parsed once; Flask caches it
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

        return Pipeline.load(name, settings.device)

    names = list(dict.fromkeys([settings.model, *settings.cvat_pipelines]))
    return FunctionCatalog(names, load, settings.cvat_labels)
