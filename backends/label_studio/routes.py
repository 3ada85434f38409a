"""The Label Studio ML backend endpoints: /health, /setup, /predict, /versions, /webhook, /metrics.

Label Studio 1.23 drops a whole /predict batch silently when the reply's count differs from the
task count, so every task gets an entry, in order. Errors answer JSON with a reason, never a
traceback; unexpected ones are logged and answered with a generic 500.
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .label_config import LabelConfigError
from .label_config import parse as parse_label_config
from .predictor import Predictor
from .project_version import ProjectVersionSync
from .refitter import Refitter, ServedCalibration
from .rescore import QueueRescorer
from .review_events import ReviewWorker
from .routing import route
from openautoglm.model.reviews.store import ReviewStore
from ..settings import Settings

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("openautoglm_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("openautoglm_request_seconds", "Request latency", ["endpoint"], registry=self.registry)
        self.tasks = Counter("openautoglm_tasks", "Tasks predicted", registry=self.registry)
        self.failures = Counter("openautoglm_task_failures", "Tasks whose image failed", ["reason"],
                                registry=self.registry)
        self.rescored = Counter("openautoglm_rescored_tasks", "Open tasks re-scored in Label Studio after a refit",
                                registry=self.registry)
        self.refits = Counter("openautoglm_refits", "Calibration refits from reviews", ["result"],
                              registry=self.registry)
        self.model_load = Gauge("openautoglm_model_load_seconds", "Model load time (the slowest worker's)",
                                registry=self.registry, multiprocess_mode="max")
        # a cascade's cost: its share of tasks is second_stage_tasks / tasks
        self.second_stage_tasks = Counter("openautoglm_second_stage_tasks",
                                          "Tasks a cascade's second stage looked at", registry=self.registry)
        self.second_stage_seconds = Counter("openautoglm_second_stage_seconds",
                                            "Time spent in a cascade's second stage", registry=self.registry)

    def count_second_stage(self, outcomes) -> None:
        looked = [o for o in outcomes if o.evidence.second_misses is not None]
        if looked:
            self.second_stage_tasks.inc(len(looked))
            self.second_stage_seconds.inc(sum(o.second_stage_seconds for o in looked))

    def exposition(self, reviews: "ReviewFigures | None" = None) -> bytes:
        """Prometheus text for the whole server. Under `openautoglm serve` every worker counts into
        files in PROMETHEUS_MULTIPROC_DIR and a scrape sums them; otherwise this process's counts.
        `reviews`: the review store's figures (`openautoglm report`'s), read by whichever worker answers."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = self.registry
        text = generate_latest(registry)
        if reviews is not None:
            extra = CollectorRegistry()
            extra.register(reviews)
            text += generate_latest(extra)
        return text


class ReviewFigures:
    """`openautoglm report`'s figures as gauges, from the review store, computed at most once a
    minute (a scrape every few seconds must not re-read every review)."""

    EVERY_S = 60.0

    def __init__(self, store: ReviewStore):
        self.store, self._cached, self._at = store, None, float("-inf")

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from openautoglm.model.reviews.summary import summary

        if time.monotonic() - self._at >= self.EVERY_S:
            self._at = time.monotonic()
            try:
                self._cached = summary(self.store.reviewed_tasks())
            except Exception:  # noqa: BLE001 - an unreadable row must not take /metrics down with it
                log.exception("review figures for /metrics could not be computed; showing the last ones")
        figures = self._cached
        if figures is None:
            return
        yield GaugeMetricFamily("openautoglm_reviewed_tasks", "Reviewed tasks in the review store",
                                value=figures["reviewed_tasks"])
        for name, key, what in (("openautoglm_latest_region_ece", "latest_region_ece", "region"),
                                ("openautoglm_latest_task_ece", "latest_task_ece", "task")):
            if figures[key] == figures[key]:  # not NaN: there are reviews
                yield GaugeMetricFamily(name, f"ECE of the {what} scores on the latest {figures['latest']} "
                                              "reviewed tasks (drift)", value=figures[key])
        audit = figures.get("audit")
        if audit:
            low, high = audit["error_interval_95"]
            gauge = GaugeMetricFamily("openautoglm_accepted_error", "Measured error of the tasks scored above "
                                      "OPENAUTOGLM_ACCEPT_ABOVE, from the audit sample", labels=["bound"])
            for bound, value in (("measured", audit["measured_error"]), ("low_95", low), ("high_95", high)):
                gauge.add_metric([bound], value)
            yield gauge
            yield GaugeMetricFamily("openautoglm_audited_tasks", "Reviewed tasks of the audit sample",
                                    value=audit["tasks"])


def blueprint(settings: Settings, predictor: Predictor, store: ReviewStore, metrics: Metrics,
              version_sync: ProjectVersionSync | None = None, served: ServedCalibration | None = None) -> Blueprint:
    routes = Blueprint("label_studio", __name__)
    routes.version_sync = version_sync  # tests wait for it
    refitter = rescorer = None
    if served is not None:
        rescorer = QueueRescorer(settings.label_studio_url if settings.label_studio_api_key else None,
                                 predictor.fetcher.auth_header, store, settings.accept_above, settings.audit_share,
                                 version_sync, metrics.rescored)
        refitter = Refitter(store, served, settings.refit_every, predictor.pipeline.display_threshold, metrics.refits,
                            lambda: rescorer.rescore(predictor.pipeline))
    routes.rescorer = rescorer
    worker = ReviewWorker(store, refitter)
    routes.review_worker, routes.refitter = worker, refitter  # tests drain and wait for them

    def authorised(webhook: bool = False) -> bool:
        if webhook and settings.webhook_secret:
            given = request.headers.get("X-Openautoglm-Webhook-Secret", "")
            if hmac.compare_digest(given, settings.webhook_secret):
                return True
        if not settings.basic_auth_user:
            return not (webhook and settings.webhook_secret)
        auth = request.authorization
        return bool(auth and hmac.compare_digest(auth.username or "", settings.basic_auth_user)
                    and hmac.compare_digest(auth.password or "", settings.basic_auth_password or ""))

    @routes.before_request
    def check_auth():
        request.started = time.perf_counter()
        if request.endpoint and request.endpoint.endswith(("health",)):
            return None
        if not authorised(webhook=request.path == "/webhook"):
            return jsonify(error="authentication required"), 401, {"WWW-Authenticate": 'Basic realm="openautoglm"'}
        return None

    @routes.after_request
    def count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unknown"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - getattr(request, "started", time.perf_counter()))
        return response

    @routes.get("/health")
    @routes.get("/")
    def health():
        return jsonify(status="UP", model_class="openautoglm", model_version=predictor.model_version)

    @routes.post("/setup")
    def setup():
        body = _json_body()
        schema = body.get("schema")
        if schema:
            try:
                parse_label_config(schema)
            except LabelConfigError as error:
                return jsonify(error=str(error)), 400
        return jsonify(model_version=predictor.model_version)

    @routes.get("/versions")
    def versions():
        return jsonify(versions=[predictor.model_version], model=str(settings.model))

    @routes.post("/predict")
    def predict():
        body = _json_body()
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            return jsonify(error="'tasks' must be a list"), 400
        config = body.get("label_config") or ""
        context = (body.get("params") or {}).get("context") or None
        try:
            outcomes = predictor.predict(tasks, config, context)
        except LabelConfigError as error:
            return jsonify(error=str(error)), 400
        metrics.tasks.inc(len(outcomes))
        metrics.count_second_stage(outcomes)
        for outcome in outcomes:
            if outcome.error:
                metrics.failures.labels(_reason(outcome.error)).inc()
        shown = [route(o.score, o.task_id, settings.accept_above, settings.audit_share) if not context
                 else (o.score, False) for o in outcomes]
        if not context:  # interactive answers are drafts, not predictions to review
            store.save_predictions(predictor.model_version, [(o.task_id, o.regions, o.evidence, o.score)
                                                             for o in outcomes if not o.error and o.task_id is not None],
                                   {o.task_id for o, (_, audited) in zip(outcomes, shown) if audited},
                                   body.get("project"), {o.task_id: o.result for o in outcomes})
            if version_sync is not None:
                version_sync.after_predictions(body.get("project"), predictor.model_version)
        return jsonify(results=[{"result": o.result, "score": score, "model_version": predictor.model_version}
                                for o, (score, _) in zip(outcomes, shown)])

    @routes.post("/webhook")
    def webhook():
        event = _json_body()
        if not event.get("action"):
            return jsonify(error="webhook body needs an 'action'"), 400
        worker.submit(event)
        return jsonify(status="queued"), 200

    figures = ReviewFigures(store)

    @routes.get("/metrics")
    def prometheus():
        return Response(metrics.exposition(figures), mimetype=CONTENT_TYPE_LATEST)

    return routes


class BadRequest(Exception):
    pass


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _reason(error: str) -> str:
    for reason in ("HTTP", "cap", "not a readable image", "Timeout", "ConnectionError", "LABEL_STUDIO_URL"):
        if reason in error:
            return reason
    return "other"


def register_errors(app) -> None:
    @app.errorhandler(BadRequest)
    def bad_request(error):
        return jsonify(error=str(error)), 400

    @app.errorhandler(404)
    def not_found(error):
        return jsonify(error="not found"), 404

    @app.errorhandler(405)
    def wrong_method(error):
        return jsonify(error="method not allowed"), 405

    @app.errorhandler(Exception)
    def unexpected(error):
        if hasattr(error, "code") and isinstance(getattr(error, "code"), int) and error.code < 500:
            return jsonify(error=str(error)), error.code
        current_app.logger.exception("unhandled error")
        return jsonify(error="internal error; see the server log"), 500
