"""Label Studio gets the calibrated scores: per region, and the task score it sorts by."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.reviews.store import ReviewStore

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
    assert scores == pytest.approx([r.calibrated_score for r in expected.regions])
    raw_scores = [r["score"] for r in answers["raw"]["result"]]
    assert scores == pytest.approx(calibrated.calibration.region_probability(raw_scores).tolist())
    assert answers["calibrated"]["score"] == pytest.approx(expected.score)


def test_a_cascade_pipeline_counts_its_second_stage_and_stores_its_evidence(make_client, image_server, bus,
                                                                              shared) -> None:
    """The image goes to the second stage when its task score is below the cascade's threshold
    (set here just above the first stage's score): /metrics counts it and its time, and the store
    keeps the evidence refitting needs."""
    from openautoglm.model.inference.cascade import CascadeSpec, SecondStage

    pipeline = Pipeline.load("yolo-cascade")
    second = pipeline.second_stage
    buffer = io.BytesIO()
    bus.save(buffer, "PNG")
    image_server.png = buffer.getvalue()
    body = {"tasks": [{"id": 7, "data": {"image": f"{image_server.url}/bus.png"}}], "label_config": CONFIG,
            "project": "3.1700000000"}
    pipeline.second_stage = None
    (first,) = pipeline.predict([bus], ["person", "bus"])
    pipeline.second_stage = SecondStage(CascadeSpec(second.spec.proposer, min(1.0, first.score + 1e-6)),
                                        second.proposer)
    client = make_client(pipeline)
    answer = client.post("/predict", json=body).get_json()["results"][0]
    (expected,) = pipeline.predict([bus], ["person", "bus"])
    assert expected.second_misses is not None and answer["score"] == pytest.approx(expected.score)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "openautoglm_second_stage_tasks_total 1.0" in metrics
    seconds = next(line for line in metrics.splitlines() if line.startswith("openautoglm_second_stage_seconds_total"))
    assert float(seconds.split()[-1]) > 0
    (row,) = ReviewStore(client.settings.store_path).unreviewed(pipeline.version, "3", "another version")
    assert row["second_misses"] == [r.score for r in expected.second_misses]
    assert [r["agreement"] for r in row["regions"]] == [e.agreement for e in expected.evidence.regions]
