"""The served calibration follows the team's reviews: a background refit after every N newly
reviewed tasks and on Label Studio's "Start training", written atomically to the server's data
folder, and picked up by every worker at its next request without a restart."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from openautoglm.converters.files import atomic_file
from openautoglm.model.reviews.refit import refit
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.calibration import Calibration, CalibrationError

from ..served import ServedPipeline

log = logging.getLogger(__name__)
REFIT_LOCK = 0x6F61676D  # PostgreSQL advisory lock: one refit at a time across replicas


def team_calibration_path(home: Path, pipeline_name: str) -> Path:
    return Path(home) / "calibrations" / f"{pipeline_name}.calibration.json"


class ServedCalibration:
    """The served pipeline's calibration: the team's refitted file where there is one for these
    weights, else the one the pipeline was loaded with (model directory or shipped), which is
    also the prior every refit starts from."""

    SHARED_POLL_S = 5.0  # how often a replica asks a shared (PostgreSQL) store for another's refit

    def __init__(self, pipeline: ServedPipeline, path: Path, store: ReviewStore | None = None):
        self.pipeline, self.path = pipeline, Path(path)
        self.base: Calibration | None = pipeline.calibrations.base
        self._seen: tuple | None = None
        self.shared = store if store is not None and store.db.dialect == "postgresql" else None
        self._polled = float("-inf")
        self.refresh()

    def refresh(self, now: bool = False) -> None:
        """Cheap when nothing changed (one stat; with a shared store, one query every few seconds,
        or at once with `now`); a file that cannot be used keeps the current one."""
        if self.shared is not None and (now or time.monotonic() - self._polled >= self.SHARED_POLL_S):
            self._polled = time.monotonic()
            self._fetch_shared()
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if key == self._seen:
            return
        self._seen = key
        try:
            calibration = Calibration.load(self.path)
        except CalibrationError as error:
            log.error("%s; keeping calibration %s", error, self.current.digest if self.current else "raw")
            return
        if calibration.pipeline_version != self.pipeline.version:
            log.warning("calibration %s was fitted for %s, not %s: not used", self.path,
                        calibration.pipeline_version, self.pipeline.version)
            return
        self.pipeline.calibrations.replace(calibration, self.pipeline.version)  # read once per batch
        log.info("calibration %s from %s (%s reviewed tasks)", calibration.digest, self.path,
                 calibration.provenance.get("reviewed_tasks"))

    def _fetch_shared(self) -> None:
        """Another replica's refit, from the shared store into this machine's file."""
        try:
            latest = self.shared.calibration(self.pipeline.version)
        except Exception:  # noqa: BLE001 - the database away for a moment: keep serving, ask again later
            log.exception("could not read the shared calibration")
            return
        if latest is None or (self.current is not None and latest[0] == self.current.digest):
            return
        with atomic_file(self.path, durable=True) as handle:
            handle.write(latest[1])

    def publish(self, calibration: Calibration) -> None:
        """A refit of this replica's, for the others (a shared store only)."""
        if self.shared is not None:
            self.shared.save_calibration(self.pipeline.version, calibration.digest, self.path.read_text("utf-8"))

    @property
    def current(self) -> Calibration | None:
        return self.pipeline.calibration

    def reviewed_at_last_refit(self) -> int:
        current = self.current
        if current is None or current is self.base:
            return 0
        return int(current.provenance.get("reviewed_tasks") or 0)


class Refitter:
    """One thread per worker; a lock file makes one refit run at a time across the server's
    workers. A refit reads the store and fits off the request path, so /predict never waits for it;
    a failed one is logged and counted, and the calibration in use stays."""

    def __init__(self, store: ReviewStore, served: ServedCalibration, every: int, display_threshold: float,
                 rescore: Callable[[], object] | None = None):
        self.store, self.served, self.every = store, served, every
        self.display_threshold, self.rescore = display_threshold, rescore
        self._wake, self._force, self.busy = threading.Event(), False, False
        self.thread = threading.Thread(target=self._run, name="openautoglm-refit", daemon=True)
        self.thread.start()

    def request(self, force: bool = False) -> None:
        """After new reviews (refits only when `every` more are in), or forced (Start training)."""
        self._force = self._force or force
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self.busy = True
            self._wake.clear()
            force, self._force = self._force, False
            self.refit_if_due(force)
            self.busy = False

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no refit or re-scoring pass is running or asked for (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while (self._wake.is_set() or self.busy) and time.monotonic() < deadline:
            time.sleep(0.02)

    def refit_if_due(self, force: bool = False) -> Calibration | None:
        try:
            with _exclusive(self.served.path.with_name(self.served.path.name + ".lock")) as mine, \
                    self.store.db.try_lock(REFIT_LOCK) as ours:
                if not (mine and ours):
                    return None  # another worker or replica is refitting; its result reaches this one by refresh()
                self.served.refresh(now=True)  # another replica's refit counts: never refit the same reviews twice
                version = self.served.pipeline.version
                new = self.store.reviewed_count(version) - self.served.reviewed_at_last_refit()
                if not force and (self.every <= 0 or new < self.every):
                    self._rescore()  # finishes a pass a stop or an error cut short; nothing to do otherwise
                    return None
                calibration = self._refit_apart(version, {"trigger": "start training" if force else
                                                          f"{new} new reviews"})
                self.served.publish(calibration)
                self.served.refresh()
                self._count("done")
                log.info("refit: calibration %s on %s reviewed tasks", calibration.digest,
                         calibration.provenance.get("reviewed_tasks"))
                self._rescore()
        except Exception:  # noqa: BLE001 - whatever went wrong, the server keeps its calibration
            log.exception("refit failed; keeping calibration %s",
                          self.served.current.digest if self.served.current else "raw")
            self._count("failed")
            return None
        return calibration

    def _refit_apart(self, version: str, provenance: dict) -> Calibration:
        """The refit runs in a child process, so what fitting loads and allocates leaves with it:
        the worker's memory stays where it was (benchmarks/refit_memory.py: 140 -> 338 MiB after three
        refits in the process, 140 -> 141 MiB with each in a child)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            child.submit(refit_into, self.store.db.location, version, self.display_threshold, self.served.base,
                         str(self.served.path), provenance, self.served.pipeline.cascade_below).result()
        return Calibration.load(self.served.path)

    def _rescore(self) -> None:
        """Its own failures are its own: a refit that succeeded is not counted as failed for them."""
        if self.rescore is None:
            return
        try:
            self.rescore()
        except Exception:  # noqa: BLE001 - an unreadable stored prediction, say: the next pass tries again
            log.exception("re-scoring the open tasks failed; the next refit check tries again")

    def _count(self, result: str) -> None:
        try:  # in the store, so /metrics counts every worker's and replica's refits across restarts
            self.store.log_refit(self.served.pipeline.version, result,
                                 self.served.current.digest if self.served.current else None)
        except Exception:  # noqa: BLE001 - a count must not fail the refit
            log.exception("could not count the refit in the store")


def refit_into(location: str, version: str, display_threshold: float, prior: Calibration | None, out: str,
               provenance: dict, cascade_below: float | None) -> None:
    """A refit from the store at `location`, written to `out` (in a child process: Refitter._refit_apart)."""
    refit(ReviewStore(location), version, display_threshold, prior, Path(out), provenance, cascade_below=cascade_below)


@contextmanager
def _exclusive(path: Path):
    """A non-blocking exclusive lock on a file: yields whether this process got it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
