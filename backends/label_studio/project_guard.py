"""Every project Label Studio names (/setup, /predict, a webhook, a project job) is checked against
the one the store holds under its id (`model.reviews.projects`): a project that replaced it (a new
Label Studio database) retires the old one here too, its refit file and its version move; an older
one is refused with the reason."""

from __future__ import annotations

from openautoglm.model.reviews.projects import ForeignProject, project_identity
from openautoglm.model.reviews.store import ReviewStore

from .project_calibrations import ProjectCalibrations
from .project_version import ProjectVersionSync

__all__ = ["ForeignProject", "ProjectGuard"]


class ProjectGuard:
    def __init__(self, store: ReviewStore, calibrations: ProjectCalibrations | None, version_sync: ProjectVersionSync):
        self.store, self.calibrations, self.version_sync = store, calibrations, version_sync

    def check(self, project: object, host: str | None = None) -> None:
        """Raises ForeignProject for a project the store must not mix with the one it holds."""
        retired = self.store.projects.observe(project, host)
        if retired:
            project_id = project_identity(project)[0]
            if self.calibrations is not None:
                self.calibrations.retire(project_id, retired)
            self.version_sync.forget(project_id)
