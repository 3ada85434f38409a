"""Reviews read as Label Studio means them: a skip is no review, a result without the image size
takes it from the stored prediction (or fails with a reason), the newest state wins by
`updated_at`, a deleted annotation stays deleted, one annotation stands for a task."""

from __future__ import annotations

from .conftest import FakePipeline

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="Cat"/></RectangleLabels></View>')


def _predicted(client, image_server, task_id: int = 1) -> list[dict]:
    body = {"tasks": [{"id": task_id, "data": {"image": f"{image_server.url}/img.png"}}], "label_config": CONFIG,
            "project": "7.1700000000"}
    (answer,) = client.post("/predict", json=body).get_json()["results"]
    assert answer["result"]
    return answer["result"]


def _event(annotation_id: int, result: list, updated: str, action: str = "ANNOTATION_CREATED", task_id: int = 1,
           **fields) -> dict:
    return {"action": action, "task": {"id": task_id},
            "annotation": {"id": annotation_id, "task": task_id, "result": result, "updated_at": updated, **fields}}


def _send(client, *events: dict) -> list[dict]:
    """The events, then the task's stored outcomes once they are matched."""
    for event in events:
        assert client.post("/webhook", json=event).status_code == 200
    services = client.app.extensions["openautoglm"]
    services.reviews.worker.drain()
    return services.store.outcomes()


def _predictions(outcomes: list[dict]) -> list[tuple]:
    return [(o["annotation_id"], o["matched"]) for o in outcomes if o["kind"] == "prediction"]


def test_a_skipped_task_is_no_review(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    _predicted(client, image_server)
    outcomes = _send(client, _event(5, [], "2026-12-05T10:00:00Z", was_cancelled=True))
    assert outcomes == []
    store = client.app.extensions["openautoglm"].store
    assert store.annotations.cancelled() == 1 and store.reviewed_tasks() == []
    assert "openautoglm_skipped_annotations 1.0" in client.get("/metrics").get_data(as_text=True)


def test_a_result_without_the_image_size_takes_the_stored_one(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    result = _predicted(client, image_server)
    bare = [{k: v for k, v in r.items() if k not in ("original_width", "original_height")} for r in result]
    assert _predictions(_send(client, _event(5, bare, "2026-12-05T10:00:00Z"))) == [("5", 1)]


def test_without_any_image_size_the_event_fails_with_its_reason(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    result = _predicted(client, image_server)
    store = client.app.extensions["openautoglm"].store
    store.db.execute("UPDATE predictions SET width = NULL, height = NULL")  # stored before sizes were kept
    bare = [{k: v for k, v in r.items() if k not in ("original_width", "original_height")} for r in result]
    assert _send(client, _event(5, bare, "2026-12-05T10:00:00Z")) == []
    (error,) = store.db.execute("SELECT error FROM failed_events").fetchone()
    assert "annotation 5 of task 1" in error and "original_width" in error


def test_the_newest_state_wins_whatever_the_arrival_order(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    result = _predicted(client, image_server)
    newer = _event(5, result, "2026-12-05T10:05:00Z", action="ANNOTATION_UPDATED")
    older = _event(5, [], "2026-12-05T10:00:00.000001Z")  # created empty, then the box was accepted
    assert _predictions(_send(client, newer, older)) == [("5", 1)]


def test_a_deleted_annotation_stays_deleted(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    result = _predicted(client, image_server)
    created = _event(5, result, "2026-12-05T10:00:00Z")
    assert _predictions(_send(client, created)) == [("5", 1)]
    assert _send(client, {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 5}]}) == []
    assert _send(client, created) == []  # sent again late: not brought back


def test_one_annotation_stands_for_a_task(make_client, image_server) -> None:
    """Several annotators: the newest one not cancelled; a ground truth before any other. The one
    standing in after a delete needs no event of its own."""
    client = make_client(FakePipeline())
    result = _predicted(client, image_server)
    first = _event(5, result, "2026-12-05T10:00:00Z")
    second = _event(6, [], "2026-12-05T11:00:00Z")  # another annotator removed the box
    assert _predictions(_send(client, first, second)) == [("6", 0)]
    assert _predictions(_send(client, _event(5, result, "2026-12-05T12:00:00Z", action="ANNOTATION_UPDATED",
                                             ground_truth=True))) == [("5", 1)]
    assert _predictions(_send(client, {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 5}]})) == [("6", 0)]
    assert _send(client, _event(6, [], "2026-12-05T13:00:00Z", action="ANNOTATION_UPDATED",
                                was_cancelled=True)) == []  # the last one turned into a skip
    assert len(client.app.extensions["openautoglm"].store.reviewed_tasks()) == 0


def test_metrics_count_from_the_store_at_once_and_across_restarts(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    result = _predicted(client, image_server)
    _send(client, _event(5, result, "2026-12-05T10:00:00Z"))
    client.app.extensions["openautoglm"].store.calibrations.log_refit("fake@1", "7", "done", "abc")
    for scraped in (client, make_client(FakePipeline())):  # the same server restarted: the same counts
        text = scraped.get("/metrics").get_data(as_text=True)
        assert "openautoglm_reviewed_tasks 1.0" in text  # no minute's lag
        assert 'openautoglm_refits_total{result="done"} 1.0' in text
        assert 'openautoglm_project_info{model_version="fake@1+calibration-raw",project="7"} 1.0' in text
