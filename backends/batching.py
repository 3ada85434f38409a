"""Dynamic batching: concurrent model calls of one worker (Label Studio /predict requests and CVAT
invocations alike) for the same pipeline and labels are grouped into one model batch, up to
`max_batch` images or `max_wait_ms` after the first request, whichever comes first. It pays where
one batch of n images costs much less than n batches of one (a GPU); on a CPU it only adds the
wait, so it is off there by default (OPENAUTOGLM_BATCH_WAIT_MS)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from openautoglm.model.scores.calibration import CURRENT


@dataclass
class _Request:
    images: list
    labels: list
    synonyms: dict
    calibration: object  # what the batch is scored with (model.scores.calibration.CURRENT: the pipeline's own)
    key: str
    done: threading.Event = field(default_factory=threading.Event)
    results: list | None = None
    error: BaseException | None = None


class DynamicBatcher:
    def __init__(self, run: Callable[..., list], max_batch: int, max_wait_ms: float,
                 lock: threading.Lock):
        self.run, self.max_batch, self.max_wait_s, self.lock = run, max_batch, max_wait_ms / 1000, lock
        self._queue: list[_Request] = []
        self._ready = threading.Condition()
        self.runs = self.images = 0  # model batches run and the images in them (benchmarks): counts, not a
        # list, since a server runs for months
        threading.Thread(target=self._serve, name="openautoglm-batcher", daemon=True).start()

    def predict(self, images: list, labels: list, synonyms: dict, calibration: object = CURRENT) -> list:
        digest = calibration if isinstance(calibration, str) or calibration is None else calibration.digest
        request = _Request(list(images), list(labels), dict(synonyms or {}), calibration,
                           json.dumps([sorted(labels), synonyms or {}, digest], sort_keys=True))
        with self._ready:
            self._queue.append(request)
            self._ready.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.results

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                first = self._queue[0]
                deadline = time.monotonic() + self.max_wait_s
                while self._size(first.key) < self.max_batch and time.monotonic() < deadline:
                    self._ready.wait(max(0.0, deadline - time.monotonic()))
                group, count = [], 0
                for request in list(self._queue):  # same labels, in arrival order, up to max_batch images
                    if request.key == first.key and (not group or count + len(request.images) <= self.max_batch):
                        group.append(request)
                        count += len(request.images)
                        self._queue.remove(request)
            self._run(group)

    def _size(self, key: str) -> int:
        return sum(len(r.images) for r in self._queue if r.key == key)

    def _run(self, group: list[_Request]) -> None:
        images = [image for request in group for image in request.images]
        try:
            with self.lock:
                results = self.run(images, group[0].labels, group[0].synonyms, calibration=group[0].calibration)
            self.runs, self.images = self.runs + 1, self.images + len(images)
            start = 0
            for request in group:
                request.results = results[start:start + len(request.images)]
                start += len(request.images)
        except BaseException as error:  # noqa: BLE001 - every waiting request gets the error, the thread lives
            for request in group:
                request.error = error
        for request in group:
            request.done.set()


class ModelCalls:
    """One worker's model calls for every protocol: one at a time under the worker's model lock
    (models are not thread-safe), and with batching on (`max_wait_ms` > 0) concurrent calls for the
    same pipeline grouped by a DynamicBatcher of that pipeline."""

    def __init__(self, max_batch: int, max_wait_ms: float):
        self.lock = threading.Lock()
        self.max_batch, self.max_wait_ms = max_batch, max_wait_ms
        self._batchers: dict[int, tuple[object, DynamicBatcher]] = {}  # the pipeline is kept: ids stay unique
        self._guard = threading.Lock()

    def predict(self, pipeline, images: list, labels: list, synonyms: dict | None = None,
                calibration: object = CURRENT) -> list:
        """Scored predictions (ImagePrediction) per image, with `calibration` (a Label Studio
        project's) or the pipeline's own."""
        if self.max_wait_ms <= 0:
            with self.lock:
                return pipeline.predict(images, labels, synonyms, calibration=calibration)
        return self.batcher(pipeline).predict(images, labels, synonyms or {}, calibration)

    def batcher(self, pipeline) -> DynamicBatcher:
        with self._guard:
            if id(pipeline) not in self._batchers:
                batcher = DynamicBatcher(pipeline.predict, self.max_batch, self.max_wait_ms, self.lock)
                self._batchers[id(pipeline)] = (pipeline, batcher)
            return self._batchers[id(pipeline)][1]
