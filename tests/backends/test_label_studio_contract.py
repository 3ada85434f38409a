"""The exact requests a real Label Studio 1.23.2 sent (../shared/fixtures), replayed against the
backend with a fake pipeline, and the answers Label Studio accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openautoglm.converters import brush_rle

RECT_CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
               '<Label value="Cat"/><Label value="Dog"/></RectangleLabels></View>')
BRUSH_CONFIG = ('<View><Image name="img" value="$photo"/><BrushLabels name="mask" toName="img">'
                '<Label value="Cat" predicted_values="kitten,tabby"/></BrushLabels>'
                '<Choices name="scene" toName="img"><Choice value="indoor"/></Choices></View>')


def _replayable(request: dict, server_url: str) -> dict:
    """The recorded body with Label Studio's host replaced by the local image server."""
    return json.loads(json.dumps(request["json"]).replace("http://127.0.0.1:8080", server_url))


def test_replay_every_recorded_request(make_client, recorded, image_server) -> None:
    client = make_client()
    for request in recorded:
        body = _replayable(request, image_server.url) if request["json"] is not None else None
        response = client.open(request["path"], method=request["method"], json=body)
        assert response.status_code == 200, (request["path"], response.get_json())
        answer = response.get_json()
        if request["path"] == "/setup":
            assert answer == {"model_version": "fake@1+calibration-raw"}
        elif request["path"] == "/predict":
            tasks = body["tasks"]
            assert list(answer) == ["results"] and len(answer["results"]) == len(tasks)
            for result in answer["results"]:
                assert result["model_version"] == "fake@1+calibration-raw" and 0 <= result["score"] <= 1
                assert result["result"], "every recorded task's image is served, so each gets a region"
                for region in result["result"]:
                    assert region["from_name"] == "label" and region["to_name"] == "image"
                    assert region["type"] == "rectanglelabels" and region["value"]["rectanglelabels"] == ["Cat"]
        elif request["path"] == "/health":
            assert answer["status"] == "UP"
    assert client.application.blueprints  # the app is still serving
    assert client.get("/health").status_code == 200


def test_rectangles_are_percent_of_the_original_size(make_client, image_server) -> None:
    client = make_client()
    task = {"id": 7, "data": {"image": "/data/upload/1/img.png"}}
    answer = client.post("/predict", json={"tasks": [task], "label_config": RECT_CONFIG}).get_json()
    (region,) = answer["results"][0]["result"]
    assert (region["original_width"], region["original_height"]) == (64, 48)
    assert region["value"]["x"] == pytest.approx(25) and region["value"]["width"] == pytest.approx(50)
    assert region["score"] == 0.8 and answer["results"][0]["score"] == 0.8


def test_brush_masks_decode_to_the_model_mask(make_client) -> None:
    client = make_client()
    task = {"id": 8, "data": {"photo": "/data/upload/1/img.png"}}
    answer = client.post("/predict", json={"tasks": [task], "label_config": BRUSH_CONFIG}).get_json()
    (region,) = answer["results"][0]["result"]
    assert region["type"] == "brushlabels" and region["from_name"] == "mask" and region["to_name"] == "img"
    decoded = brush_rle.decode(region["value"]["rle"], 64, 48)
    yy, xx = np.mgrid[0:48, 0:64]
    assert np.array_equal(decoded, ((xx - 32) / 16) ** 2 + ((yy - 24) / 12) ** 2 <= 1)
    # the labeling config's predicted_values reach the model as synonyms
    assert client.pipeline.calls[-1][2]["Cat"] == ["kitten", "tabby"]


def test_interactive_keypoint_returns_the_detection_under_it(make_client, recorded, image_server) -> None:
    client = make_client()
    request = next(r for r in recorded if r["path"] == "/predict" and r["json"]["params"]["context"])
    body = _replayable(request, image_server.url)
    body["params"]["context"]["result"][0]["value"].update(x=50, y=50)  # inside the fake detection
    (result,) = client.post("/predict", json=body).get_json()["results"]
    assert [r["value"]["rectanglelabels"] for r in result["result"]] == [["Cat"]]
    body["params"]["context"]["result"][0]["value"].update(x=2, y=2)  # outside it
    (result,) = client.post("/predict", json=body).get_json()["results"]
    assert result["result"] == []


def test_a_click_is_answered_with_its_objects_box_not_another_keypoint(make_client, image_server) -> None:
    from openautoglm.cli.label_config import label_config

    client = make_client()
    keypoint = {"id": "kp", "from_name": "click", "to_name": "image", "type": "keypointlabels", "is_positive": True,
                "original_width": 64, "original_height": 48, "value": {"x": 50, "y": 50, "keypointlabels": ["Cat"]}}
    body = {"tasks": [{"id": 3, "data": {"image": "/data/upload/1/img.png"}}], "params": {"context": {
        "result": [keypoint]}}, "label_config": label_config(["Cat"], interactive=True)}
    (result,) = client.post("/predict", json=body).get_json()["results"]
    assert [(r["type"], r["from_name"]) for r in result["result"]] == [("rectanglelabels", "label")]


def test_webhook_matches_the_review_against_the_prediction(make_client, recorded, image_server) -> None:
    client = make_client()
    task = {"id": 1, "data": {"image": "/data/upload/1/img.png"}}
    client.post("/predict", json={"tasks": [task], "label_config": RECT_CONFIG})
    created = next(r for r in recorded if r["json"] and r["json"].get("action") == "ANNOTATION_CREATED")
    event = json.loads(json.dumps(created["json"]))
    event["annotation"]["result"][0].update(original_width=64, original_height=48)  # our test image's size
    event["annotation"]["result"][0]["value"].update(x=25, y=25, width=50, height=50, rectanglelabels=["Cat"])
    event["annotation"]["result"].append({**event["annotation"]["result"][0], "id": "a2",
                                          "value": {"x": 0, "y": 0, "width": 10, "height": 10,
                                                    "rectanglelabels": ["Dog"]}})
    assert client.post("/webhook", json=event).get_json() == {"status": "queued"}
    worker = client.app.extensions["openautoglm"].reviews.worker
    worker.drain()
    rows = [(r["label"], r["score"], r["matched"], r["kind"]) for r in worker.store.outcomes()]
    assert rows == [("Cat", 0.8, 1, "prediction"), ("Dog", None, 0, "missed")]
    # two webhooks to /webhook (Label Studio's own and a hand-made one) deliver each event twice:
    # the annotation's outcome replaces itself, nothing is counted twice
    client.post("/webhook", json=event), client.post("/webhook", json=event)
    worker.drain()
    assert [(r["label"], r["score"], r["matched"], r["kind"]) for r in worker.store.outcomes()] == rows
    deleted = next(r for r in recorded if r["json"] and r["json"].get("action") == "ANNOTATIONS_DELETED")
    client.post("/webhook", json=deleted["json"])
    worker.drain()
    assert worker.store.outcomes() == []
