"""GET /report, and /health's model version of each project with a calibration of its own."""

from __future__ import annotations

from pathlib import Path

from openautoglm.converters import Box, Region
from openautoglm.model.scores.scoring import ImageEvidence

from .conftest import FakePipeline
from .test_project_calibrations import _calibration


def test_the_server_serves_the_page(make_client, tmp_path: Path) -> None:
    client = make_client()
    store = client.app.extensions["openautoglm"].reviews.store
    store.save_predictions("fake@1+calibration-raw", [(1, [Region("cat", box=Box(0, 0, 10, 10), score=0.8)],
                                                       ImageEvidence.of_scores([0.8], []), 0.8)], project="9")
    response = client.get("/report?project=9")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "Review report: project 9" in response.text and "<span class='key'>1</span> tasks open" in response.text
    for bad in ("7", "abc", "nan"):
        response = client.get(f"/report?accept_above={bad}")
        assert response.status_code == 400 and "accept_above" in response.get_json()["error"]
    assert "score is at least <b>0.5</b>" in client.get("/report?project=9&accept_above=0.5").text


def test_health_lists_the_model_version_of_each_project_with_its_own_calibration(make_client) -> None:
    client = make_client(FakePipeline(_calibration(1.0)))
    assert client.get("/health").get_json()["projects"] == {}
    refit = _calibration(0.5)
    refit.save(client.app.extensions["openautoglm"].requests.predictor.calibrations.path("3"))
    health = client.get("/health").get_json()
    assert health["projects"] == {"3": f"fake@1+calibration-{refit.digest}"}
    assert health["model_version"] == client.pipeline.model_version  # the pipeline's own
