"""Each project's calibration follows its own reviews: a background refit after every N newly
reviewed tasks of the project and on Label Studio's "Start training" in it, written atomically to
the server's data folder (`ProjectCalibrations`), and picked up by every worker at its next request
for that project, without a restart."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from openautoglm.model.reviews.calibrations import project_key
from openautoglm.model.reviews.projects import is_retired
from openautoglm.model.reviews.refit import refit
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.calibration import Calibration

from .project_calibrations import ProjectCalibrations

log = logging.getLogger(__name__)
REFIT_LOCK = 0x6F61676D  # PostgreSQL advisory lock: one refit at a time across replicas


class Refitter:
    """One thread per worker; a lock file makes one refit run at a time across the server's
    workers. A refit reads the store and fits off the request path, so /predict never waits for it;
    a failed one is logged and counted, and the project keeps the calibration it had."""

    def __init__(self, store: ReviewStore, calibrations: ProjectCalibrations, every: int, display_threshold: float,
                 rescore: Callable[[str], object] | None = None):
        self.store, self.calibrations, self.every = store, calibrations, every
        self.display_threshold, self.rescore = display_threshold, rescore
        self._wake, self._forced, self.busy = threading.Event(), set(), False
        self.thread = threading.Thread(target=self._run, name="openautoglm-refit", daemon=True)
        self.thread.start()

    def request(self, force: bool = False, project: object = None) -> None:
        """After new reviews (a project refits only when `every` more of its own are in), or forced
        (Start training: that project; every project with reviews when none is named)."""
        if force:
            self._forced.add(ALL if project is None else project_key(project))
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self.busy = True
            self._wake.clear()
            forced, self._forced = self._forced, set()
            self.refit_if_due(forced)
            self.busy = False

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no refit or re-scoring pass is running or asked for (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while (self._wake.is_set() or self.busy) and time.monotonic() < deadline:
            time.sleep(0.02)

    def refit_if_due(self, forced: set[str] = frozenset()) -> dict[str, Calibration]:
        """Refit every project that is due (or forced; `ALL` forces every project with reviews), each
        from its own reviews; then re-score each project's open tasks. The new calibrations by project."""
        done: dict[str, Calibration] = {}
        try:
            with _exclusive(self.calibrations.folder / "refit.lock") as mine, \
                    self.store.db.try_lock(REFIT_LOCK) as ours:
                if not (mine and ours):
                    return done  # another worker or replica is refitting; its result reaches this one by the files
                self.calibrations.fetch_shared()  # another replica's refit counts: never refit the same reviews twice
                reviewed = self.store.reviewed_count(self.calibrations.pipeline.version)
                for project, count in reviewed.items():
                    if is_retired(project):
                        continue
                    new = count - self.calibrations.reviewed_at_last_refit(project)
                    if project in forced or ALL in forced or (self.every > 0 and new >= self.every):
                        trigger = "start training" if project in forced or ALL in forced else f"{new} new reviews"
                        calibration = self._refit(project, {"trigger": trigger})
                        if calibration is not None:
                            done[project] = calibration
                    self._rescore(project)  # after a refit, or finishing a pass a stop or an error cut short
                for project in forced - set(reviewed) - {ALL}:
                    log.error("refit of project %s asked for, but it has no reviews of %s yet", project or "(none)",
                              self.calibrations.pipeline.version)
                    self._count(project, "failed", None)
        except Exception:  # noqa: BLE001 - the store or the lock failed: every project keeps its calibration
            log.exception("refit check failed; every project keeps its calibration")
        return done

    def _refit(self, project: str, provenance: dict) -> Calibration | None:
        try:
            calibration = self._refit_apart(project, provenance)
            self.calibrations.publish(project, calibration)
        except Exception:  # noqa: BLE001 - whatever went wrong, the project keeps its calibration
            kept = self.calibrations.calibration(project)
            log.exception("refit of project %s failed; keeping calibration %s", project or "(none)",
                          kept.digest if kept else "raw")
            self._count(project, "failed", kept.digest if kept else None)
            return None
        self._count(project, "done", calibration.digest)
        log.info("refit of project %s: calibration %s on %s reviewed tasks", project or "(none)", calibration.digest,
                 calibration.provenance.get("reviewed_tasks"))
        return calibration

    def _refit_apart(self, project: str, provenance: dict) -> Calibration:
        """The refit runs in a child process, so what fitting loads and allocates leaves with it:
        the worker's memory stays where it was (benchmarks/refit_memory.py: 140 -> 338 MiB after three
        refits in the process, 140 -> 141 MiB with each in a child)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pipeline, path = self.calibrations.pipeline, self.calibrations.path(project)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            child.submit(refit_into, self.store.db.location, pipeline.version, project, self.display_threshold,
                         self.calibrations.base, str(path), provenance, pipeline.cascade_below).result()
        return Calibration.load(path)

    def _rescore(self, project: str) -> None:
        """Its own failures are its own: a refit that succeeded is not counted as failed for them."""
        if self.rescore is None:
            return
        try:
            self.rescore(project)
        except Exception:  # noqa: BLE001 - an unreadable stored prediction, say: the next pass tries again
            log.exception("re-scoring project %s's open tasks failed; the next refit check tries again", project)

    def _count(self, project: str, result: str, digest: str | None) -> None:
        try:  # in the store, so /metrics counts every worker's and replica's refits across restarts
            self.store.calibrations.log_refit(self.calibrations.pipeline.version, project, result, digest)
        except Exception:  # noqa: BLE001 - a count must not fail the refit
            log.exception("could not count the refit in the store")


ALL = "*"  # Start training without a project: every project with reviews


def refit_into(location: str, version: str, project: str, display_threshold: float, prior: Calibration | None,
               out: str, provenance: dict, cascade_below: float | None) -> None:
    """A project's refit from the store at `location`, written to `out` (in a child process:
    Refitter._refit_apart)."""
    refit(ReviewStore(location), version, display_threshold, prior, Path(out), provenance, cascade_below=cascade_below,
          project=project)


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
