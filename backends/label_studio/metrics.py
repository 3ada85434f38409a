"""The server's Prometheus metrics: request and task counters every worker adds to, and the review
store's figures (`openautoglm report`'s) as gauges."""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from openautoglm.model.reviews.store import ReviewStore

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
        self.deferred = Counter("openautoglm_deferred_tasks", "Tasks handed to a background job after the /predict "
                                "budget", registry=self.registry)
        self.imported = Counter("openautoglm_imported_tasks", "Predictions a background job imported into Label Studio",
                                registry=self.registry)
        self.model_load = Gauge("openautoglm_model_load_seconds", "Model load time (the slowest worker's)",
                                registry=self.registry, multiprocess_mode="max")
        # a cascade's cost: its share of tasks is second_stage_tasks / tasks
        self.second_stage_tasks = Counter("openautoglm_second_stage_tasks",
                                          "Tasks a cascade's second stage looked at", registry=self.registry)
        self.second_stage_seconds = Counter("openautoglm_second_stage_seconds",
                                            "Time spent in a cascade's second stage", registry=self.registry)

    def count_tasks(self, outcomes) -> None:
        """A /predict's tasks, its failed images by reason, and a cascade's second stage's share."""
        self.tasks.inc(len(outcomes))
        for outcome in outcomes:
            if outcome.error:
                self.failures.labels(failure_reason(outcome.error)).inc()
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
    VERSIONS_EVERY_S = 5.0

    def __init__(self, store: ReviewStore):
        self.store, self._cached, self._at = store, None, float("-inf")
        self._versions: dict[str, str] = {}
        self._versions_at = float("-inf")

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from openautoglm.model.reviews.summary import summary

        if time.monotonic() - self._at >= self.EVERY_S:
            self._at = time.monotonic()
            try:
                self._cached = summary(self.store.reviewed_tasks())
            except Exception:  # noqa: BLE001 - an unreadable row must not take /metrics down with it
                log.exception("review figures for /metrics could not be computed; showing the last ones")
        yield from self._counts()
        figures = self._cached
        if figures is None:
            return
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


    def _counts(self):
        """Counted in the store on every scrape (current, the same whichever worker or replica
        answers, and kept across restarts); each project's model version at most 5 s old."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        from openautoglm.model.reviews.calibrations import project_key
        from openautoglm.model.reviews.projects import is_retired

        try:
            counts = self.store.counts()
            if time.monotonic() - self._versions_at >= self.VERSIONS_EVERY_S:
                self._versions_at = time.monotonic()
                self._versions = {project_key(p): v for p, v in self.store.project_versions().items()
                                  if not is_retired(project_key(p))}  # a replaced project is no project now
        except Exception:  # noqa: BLE001 - the store away for a moment: no counts this scrape
            log.exception("review store counts for /metrics could not be read")
            return
        yield GaugeMetricFamily("openautoglm_reviewed_tasks", "Reviewed tasks in the review store",
                                value=counts["reviewed_tasks"])
        yield GaugeMetricFamily("openautoglm_skipped_annotations", "Annotations whose latest state is a skip "
                                "(was_cancelled in Label Studio): not reviews", value=counts["skipped"])
        refits = CounterMetricFamily("openautoglm_refits", "Calibration refits from reviews", labels=["result"])
        for result in ("done", "failed"):
            refits.add_metric([result], counts["refits"].get(result, 0))
        yield refits
        info = InfoMetricFamily("openautoglm_project", "Each project's model version, as last predicted",
                                labels=["project"])
        for project, version in sorted(self._versions.items()):
            info.add_metric([project], {"model_version": version})
        yield info


def failure_reason(error: str) -> str:
    for reason in ("OPENAUTOGLM_MAX_PIXELS", "only http and https", "not a URL", "LABEL_STUDIO_URL", "HTTP", "cap",
                   "not a readable image", "Timeout", "ConnectionError"):
        if reason in error:
            return reason
    return "other"
