"""Each Label Studio project's calibration: its own refit file where there is one, the pipeline's
otherwise; a broken or foreign file never replaces what is served; the command line's prelabelling
scores a project as the server does."""

from __future__ import annotations

from pathlib import Path

from openautoglm.backends.label_studio.client import LabelStudioClient
from openautoglm.backends.label_studio.images import ImageFetcher
from openautoglm.backends.label_studio.predictor import Predictor
from openautoglm.backends.label_studio.prelabel import PagePredictor
from openautoglm.backends.label_studio.project_calibrations import ProjectCalibrations
from openautoglm.backends.settings import Settings
from openautoglm.model.scores.calibration import TASK_FEATURES, Calibration

from .conftest import FakePipeline

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="Cat"/></RectangleLabels></View>')


def _calibration(slope: float, weights: str = "fake@1") -> Calibration:
    zeros = (0.0,) * len(TASK_FEATURES)
    return Calibration(weights, 0.25, (0.0, 1.0), (0.0, slope), zeros, (1.0,) * len(TASK_FEATURES), zeros, 0.0)


def test_a_project_is_served_its_own_refit_and_every_other_project_the_pipelines(tmp_path: Path) -> None:
    shipped = _calibration(1.0)
    calibrations = ProjectCalibrations(FakePipeline(shipped), tmp_path / "calibrations" / "fake")
    refit = _calibration(0.5)
    refit.save(calibrations.path("3"))
    assert calibrations.calibration("3.1700000000") == refit and calibrations.calibration(3) == refit
    assert calibrations.calibration("4") is shipped and calibrations.calibration(None) is shipped
    assert calibrations.scoring("3") == (refit, f"fake@1+calibration-{refit.digest}")
    assert calibrations.scoring("4") == (shipped, f"fake@1+calibration-{shipped.digest}")
    calibrations.path("3").write_text("{not json")  # half-written by hand: the project keeps its refit
    assert calibrations.calibration("3") == refit
    _calibration(0.25, weights="other@1").save(calibrations.path("4"))  # fitted for other weights: not used
    assert calibrations.calibration("4") is shipped


def test_prelabelling_from_the_command_line_scores_a_project_with_its_own_refit(image_server, tmp_path) -> None:
    image_server.label_config = CONFIG
    settings = Settings(label_studio_url=image_server.url, label_studio_api_key="legacy-key")
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key, 10)
    pipeline = FakePipeline(_calibration(1.0))
    calibrations = ProjectCalibrations(pipeline, tmp_path / "calibrations" / "fake")
    refit = _calibration(0.5)
    refit.save(calibrations.path("7"))
    predictor = Predictor(pipeline, ImageFetcher(settings, client), batch_size=4, calibrations=calibrations)
    tasks = [{"id": 1, "data": {"image": f"{image_server.url}/img.png"}}]
    own, other = PagePredictor(predictor, "7")(tasks, CONFIG), PagePredictor(predictor, "8")(tasks, CONFIG)
    assert PagePredictor(predictor, "7").model_version == own.predictions[0]["model_version"]
    assert own.predictions[0]["model_version"].endswith(refit.digest)
    assert other.predictions[0]["model_version"] == pipeline.model_version
    assert own.predictions[0]["result"][0]["score"] == refit.region_probability([0.8])[0]
    assert other.predictions[0]["result"][0]["score"] == pipeline.calibration.region_probability([0.8])[0]
    assert own.predictions[0]["result"][0]["score"] != other.predictions[0]["result"][0]["score"]
