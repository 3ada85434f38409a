"""Where a pipeline's calibration comes from: the one asked for (OPENAUTOGLM_CALIBRATION: a file, or
`raw` for none), else `<name>.calibration.json` in the model directory, else the one shipped with
the package.
A file fitted for other weights is not used: the scores would mean something else."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from openautoglm.model.scores.calibration import Calibration, CalibrationError

log = logging.getLogger(__name__)


def find_calibration(pipeline_name: str, pipeline_version: str, chosen: str = "",
                     model_dir: Path | None = None) -> Calibration | None:
    chosen = chosen.strip()
    if chosen.lower() == "raw":
        return None
    if chosen:  # asked for by name: any problem is an error, never a silent fallback to raw scores
        calibration = Calibration.load(Path(chosen))
        if calibration.pipeline_version != pipeline_version:
            raise CalibrationError(f"calibration file {chosen} was fitted for {calibration.pipeline_version}, "
                                   f"not {pipeline_version}")
        return calibration
    candidates = []
    if model_dir:
        candidates.append(Path(model_dir) / f"{pipeline_name}.calibration.json")
    shipped = resources.files("openautoglm.model.scores.calibrations").joinpath(f"{pipeline_name}.json")
    candidates.append(Path(str(shipped)))
    for path in candidates:
        if not path.is_file():
            continue
        calibration = Calibration.load(path)  # a corrupt file is an error, not raw scores in disguise
        if calibration.pipeline_version == pipeline_version:
            return calibration
        log.warning("calibration %s was fitted for %s, not %s: scores stay raw", path,
                    calibration.pipeline_version, pipeline_version)
    return None
