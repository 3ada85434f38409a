"""Where a pipeline reads its calibration: one explicit object, filled at load with the calibration
found for the weights (the prior of every refit), and refreshed by whoever serves the pipeline
when a refit lands. A batch reads `current` once, so a refit never lands in the middle of one."""

from __future__ import annotations

import threading

from openautoglm.model.scores.calibration import Calibration


class CalibrationSource:
    def __init__(self, calibration: Calibration | None):
        self.base = calibration  # what the pipeline was loaded with
        self._current = calibration
        self._lock = threading.Lock()

    @property
    def current(self) -> Calibration | None:
        return self._current

    def replace(self, calibration: Calibration | None, expected_version: str) -> None:
        """Serve `calibration` from the next batch on; one fitted for other weights is refused."""
        if calibration is not None and calibration.pipeline_version != expected_version:
            raise ValueError(f"calibration {calibration.digest} was fitted for {calibration.pipeline_version}, "
                             f"not {expected_version}")
        with self._lock:
            self._current = calibration
