"""The Label Studio ML backend endpoints: /health, /setup, /predict, /versions, /webhook, /metrics, /report.

Label Studio 1.23 drops a whole /predict batch silently when the reply's count differs from the
task count, so every task gets an entry, in order. Errors answer JSON with a reason, never a
traceback; unexpected ones are logged and answered with a generic 500.
"""

from __future__ import annotations

import hmac
import logging
import re
import time

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from openautoglm.converters.label_studio_config import LabelConfigError
from openautoglm.converters.label_studio_config import parse as parse_label_config
from openautoglm.model.reviews.report_page import report_html

from ..settings import Settings
from .metrics import Metrics, ReviewFigures
from .project_guard import ForeignProject, ProjectGuard
from .request_path import PredictRequests
from .review_events import USED_ACTIONS, event_problem
from .review_loop import ReviewLoop

log = logging.getLogger(__name__)


def blueprint(settings: Settings, requests: PredictRequests, reviews: ReviewLoop, metrics: Metrics,
              guard: ProjectGuard) -> Blueprint:
    """The URLs only: what each one does lives in the objects `create_app` built."""
    routes = Blueprint("label_studio", __name__)
    predictor = requests.predictor
    _guard_and_count(routes, settings, metrics)
    routes.register_error_handler(ForeignProject, refused)

    @routes.get("/health")
    @routes.get("/")
    def health():
        return jsonify(status="UP", model_class="openautoglm", model_version=predictor.model_version,
                       projects=predictor.project_versions())  # those with a refit of their own

    @routes.post("/setup")
    def setup():
        body = _json_body()
        try:
            parse_label_config(body.get("schema") or "<View/>")
        except LabelConfigError as error:
            return jsonify(error=str(error)), 400
        guard.check(body.get("project"), body.get("hostname") or None)  # ForeignProject: `refused`
        return jsonify(model_version=predictor.scoring(body.get("project"))[1])  # the project's own

    @routes.get("/versions")
    def versions():
        return jsonify(versions=[predictor.model_version], model=str(settings.model))

    @routes.post("/predict")
    def predict():
        body = _json_body()
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            return jsonify(error="'tasks' must be a list"), 400
        context = (body.get("params") or {}).get("context") or None
        guard.check(body.get("project"))
        try:
            results = requests.answer(tasks, body.get("label_config") or "", context, body.get("project"))
        except LabelConfigError as error:
            return jsonify(error=str(error)), 400
        return jsonify(results=results)

    @routes.post("/webhook")
    def webhook():
        event = _json_body()
        if not event.get("action"):
            return jsonify(error="webhook body needs an 'action'"), 400
        if event["action"] not in USED_ACTIONS:
            return jsonify(status="ignored", reason=f"{event['action']} is not used by this backend"), 200
        problem = event_problem(event)
        if problem:
            return jsonify(error=problem), 400
        reviews.submit(event)
        return jsonify(status="queued"), 200

    _job_routes(routes, requests, reviews.store, guard)
    _report_routes(routes, settings, reviews, metrics)
    return routes


def refused(error: ForeignProject):
    """409, the reason in the status line as well: Label Studio shows an ML backend's error as
    requests words it ("409 Client Error: <reason phrase> for url: ..."), never the body."""
    reason = re.sub(r"[^ -~]", "?", str(error))
    return jsonify(error=str(error)), f"409 {reason}"


def _report_routes(routes: Blueprint, settings: Settings, reviews: ReviewLoop, metrics: Metrics) -> None:
    figures = ReviewFigures(reviews.store)

    @routes.get("/metrics")
    def prometheus():
        return Response(metrics.exposition(figures), mimetype=CONTENT_TYPE_LATEST)

    @routes.get("/report")
    def report_page():
        """The review report (HTML) of ?project=N, every project without; ?accept_above= overrides
        OPENAUTOGLM_ACCEPT_ABOVE for the page."""
        accept_above = settings.accept_above
        if "accept_above" in request.args:
            try:
                accept_above = float(request.args["accept_above"])
            except ValueError:
                accept_above = float("nan")
            if not 0 <= accept_above <= 1:  # NaN fails too
                return jsonify(error="accept_above must be a number in [0, 1]"), 400
        page = report_html(reviews.store, request.args.get("project") or None, accept_above)
        return Response(page, mimetype="text/html")


def _job_routes(routes: Blueprint, requests: PredictRequests, store, guard: ProjectGuard) -> None:
    @routes.get("/jobs")
    def jobs():
        """Background prelabelling jobs, newest first: tasks, predicted, imported, failed, state."""
        return jsonify(jobs=store.jobs.recent())

    @routes.post("/jobs")
    def start_job():
        """Pre-annotate a whole Label Studio project in the background: {"project": <id>}."""
        project = str(_json_body().get("project") or "")
        if not project.isdigit():
            return jsonify(error="the body needs the project's id: {\"project\": 12}"), 400
        if not requests.client.writable:
            return jsonify(error="the server needs LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY to import "
                                 "predictions"), 409
        shown = requests.client.project(project)  # Label Studio's view of it: creation time, labelling config
        guard.check(shown)
        return jsonify(job=requests.start_project(project, shown.get("label_config") or "")), 202


def _guard_and_count(routes: Blueprint, settings: Settings, metrics: Metrics) -> None:
    """Every route but /health asks for authentication; every request is counted and timed."""

    @routes.before_request
    def check_auth():
        request.started = time.perf_counter()
        if request.endpoint and request.endpoint.endswith(("health",)):
            return None
        if not authorised(settings, webhook=request.path == "/webhook"):
            return jsonify(error="authentication required"), 401, {"WWW-Authenticate": 'Basic realm="openautoglm"'}
        return None

    @routes.after_request
    def count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unknown"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - getattr(request, "started", time.perf_counter()))
        return response


def authorised(settings: Settings, webhook: bool = False) -> bool:
    """Basic auth when BASIC_AUTH_USER is set; webhooks may prove themselves with the shared secret
    instead (Label Studio sends no basic auth with them)."""
    if webhook and settings.webhook_secret:
        given = request.headers.get("X-Openautoglm-Webhook-Secret", "")
        if hmac.compare_digest(given, settings.webhook_secret):
            return True
    if not settings.basic_auth_user:
        return not (webhook and settings.webhook_secret)
    auth = request.authorization
    return bool(auth and hmac.compare_digest(auth.username or "", settings.basic_auth_user)
                and hmac.compare_digest(auth.password or "", settings.basic_auth_password or ""))


class BadRequest(Exception):
    pass


def _json_body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


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

    @app.errorhandler(413)
    def too_large(error):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return jsonify(error=f"the body is over {limit // 2**20} MB (OPENAUTOGLM_MAX_REQUEST_MB)"), 413

    @app.errorhandler(Exception)
    def unexpected(error):
        if isinstance(getattr(error, "code", None), int) and error.code < 500:
            return jsonify(error=str(error)), error.code
        current_app.logger.exception("unhandled error")
        return jsonify(error="internal error; see the server log"), 500
