"""Each Label Studio project's calibration: its own refit, from its own reviews only, where it has
one; else the pipeline's calibration as loaded (model directory or shipped), which is also the
prior every project's refit starts from. So one project's reviews never change another's scores,
and each project's model version carries its own calibration's digest.

A refit is written atomically to the server's data folder (one file per project) and picked up by
every worker at its next request for that project, without a restart; with a shared (PostgreSQL)
store, replicas find each other's refits there."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

from openautoglm.converters.files import atomic_file
from openautoglm.model.reviews.calibrations import project_key
from openautoglm.model.reviews.projects import is_retired
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.calibration import Calibration, CalibrationError, model_version_of

from ..served import ServedPipeline

log = logging.getLogger(__name__)


def calibrations_folder(home: Path, pipeline_name: str) -> Path:
    return Path(home) / "calibrations" / pipeline_name


class ProjectCalibrations:
    SHARED_POLL_S = 5.0  # how often a replica asks a shared (PostgreSQL) store for another's refit

    def __init__(self, pipeline: ServedPipeline, folder: Path, store: ReviewStore | None = None):
        self.pipeline, self.folder = pipeline, Path(folder)
        self.base: Calibration | None = pipeline.calibration
        self.shared = store if store is not None and store.db.dialect == "postgresql" else None
        self._loaded: dict[str, tuple[tuple, Calibration]] = {}  # project -> (file's stat key, calibration)
        self._polled, self._fetched = float("-inf"), {}  # project -> digest written from the shared store
        self._lock = threading.Lock()

    def path(self, project: object) -> Path:
        key = project_key(project)
        return self.folder / f"project-{re.sub(r'[^A-Za-z0-9_-]', '_', key) or 'none'}.calibration.json"

    def calibration(self, project: object) -> Calibration | None:
        """What the project's tasks are scored with now. Cheap when nothing changed: one stat (with a
        shared store, one query every few seconds for every project together)."""
        if self.shared is not None and time.monotonic() - self._polled >= self.SHARED_POLL_S:
            self.fetch_shared()  # another replica's refit counts
        key, path = project_key(project), self.path(project)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return self.base
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is not None and loaded[0] == seen:
                return loaded[1]
            try:
                calibration = Calibration.load(path)
            except CalibrationError as error:
                kept = loaded[1] if loaded else self.base
                log.error("%s; project %s keeps calibration %s", error, key, _digest(kept))
                return kept
            if calibration.pipeline_version != self.pipeline.version:
                log.warning("calibration %s was fitted for %s, not %s: not used", path,
                            calibration.pipeline_version, self.pipeline.version)
                return self.base
            self._loaded[key] = (seen, calibration)
        log.info("project %s: calibration %s from %s (%s reviewed tasks)", key or "(none)", calibration.digest, path,
                 calibration.provenance.get("reviewed_tasks"))
        return calibration

    def scoring(self, project: object) -> tuple[Calibration | None, str]:
        """(what the project's tasks are scored with now, the model version saying so)."""
        calibration = self.calibration(project)
        return calibration, model_version_of(self.pipeline.version, calibration)

    def own_versions(self) -> dict[str, str]:
        """Each project with a refit of its own (a file here) -> its model version."""
        versions = {}
        for path in sorted(self.folder.glob("project-*.calibration.json")):
            project = path.name[len("project-"):-len(".calibration.json")]
            calibration = self.calibration(project)
            if calibration is not self.base:
                versions[project] = model_version_of(self.pipeline.version, calibration)
        return versions

    def retire(self, project: object, retired: str) -> None:
        """A replaced project (`model.reviews.projects`): its refit is kept in retired/ under its
        retired key, and the project id is scored with the pipeline's calibration again."""
        path = self.path(project)
        with self._lock:
            self._loaded.pop(project_key(project), None)
            if path.exists():
                (self.folder / "retired").mkdir(parents=True, exist_ok=True)
                path.replace(self.folder / "retired" / self.path(retired).name)

    def reviewed_at_last_refit(self, project: object) -> int:
        current = self.calibration(project)
        if current is None or current is self.base:
            return 0
        return int(current.provenance.get("reviewed_tasks") or 0)

    def fetch_shared(self) -> None:
        """Other replicas' refits, from the shared store into this machine's files."""
        if self.shared is None:
            return
        self._polled = time.monotonic()
        try:
            latest = self.shared.calibrations.digests(self.pipeline.version)
            for project, digest in latest.items():
                if is_retired(project):  # by another replica: drop its refit here too
                    self._drop_replaced(project, digest)
                    continue
                loaded = self._loaded.get(project)
                if self._fetched.get(project) == digest or (loaded is not None and loaded[1].digest == digest):
                    continue
                found = self.shared.calibrations.get(self.pipeline.version, project)
                if found is not None:
                    with atomic_file(self.path(project), durable=True) as handle:
                        handle.write(found[1])
                    self._fetched[project] = found[0]
        except Exception:  # noqa: BLE001 - the database away for a moment: keep serving, ask again later
            log.exception("could not read the shared calibrations")

    def _drop_replaced(self, retired: str, digest: str) -> None:
        project = retired.split("@")[0]
        current = self.calibration(project)
        if current is not None and current is not self.base and current.digest == digest:
            self.retire(project, retired)

    def publish(self, project: object, calibration: Calibration) -> None:
        """A refit of this replica's, for the others (a shared store only)."""
        if self.shared is not None:
            self.shared.calibrations.save(self.pipeline.version, project, calibration.digest,
                                          self.path(project).read_text("utf-8"))


def _digest(calibration: Calibration | None) -> str:
    return calibration.digest if calibration is not None else "raw"
