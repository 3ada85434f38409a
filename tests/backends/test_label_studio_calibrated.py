"""Label Studio gets the calibrated scores: per region, and the task score it sorts by."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from openautoglm.model.pipeline import Pipeline

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="person"/><Label value="bus"/></RectangleLabels></View>')


@pytest.fixture(scope="module")
def pipelines(shared):
    import os

    os.environ["OPENAUTOGLM_MODEL_DIR"] = str(shared / "models")
    return Pipeline.load("yolo"), Pipeline.load("yolo", calibration=None)


def test_predict_returns_calibrated_region_and_task_scores(make_client, image_server, bus, pipelines) -> None:
    calibrated, raw = pipelines
    assert calibrated.calibration is not None, "the yolo pipeline ships with a calibration"
    buffer = io.BytesIO()
    bus.save(buffer, "JPEG")
    image_server.png = buffer.getvalue()
    answers = {}
    for name, pipeline in (("calibrated", calibrated), ("raw", raw)):
        client = make_client(pipeline)
        body = {"tasks": [{"id": 1, "data": {"image": f"{image_server.url}/bus.png"}}], "label_config": CONFIG}
        answers[name] = client.post("/predict", json=body).get_json()["results"][0]
        answers[name]["health"] = client.get("/health").get_json()["model_version"]
    assert answers["calibrated"]["model_version"] == answers["calibrated"]["health"] == calibrated.model_version
    assert answers["raw"]["model_version"].endswith("+calibration-raw")
    assert calibrated.model_version.endswith(f"+calibration-{calibrated.calibration.digest}")
    image = Image.open(io.BytesIO(image_server.png))
    (expected,) = calibrated.predict([image.convert("RGB")], ["person", "bus"])
    scores = [r["score"] for r in answers["calibrated"]["result"]]
    assert scores == pytest.approx([r.score for r in expected.regions])
    raw_scores = [r["score"] for r in answers["raw"]["result"]]
    assert scores == pytest.approx(calibrated.calibration.region_probability(raw_scores).tolist())
    assert answers["calibrated"]["score"] == pytest.approx(expected.score)
