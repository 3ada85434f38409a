"""OPENAUTOGLM_ACCEPT_ABOVE: tasks at or above the threshold are accepted in bulk, but for a stable
random audit share shown just below it, whose reviews measure the accepted tasks' error."""

from __future__ import annotations

from openautoglm.backends.label_studio.audit import is_audited, route
from openautoglm.model.reviews.summary import summary

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="cat"/></RectangleLabels></View>')


def test_the_audit_share_is_stable_and_about_its_size() -> None:
    audited = [task for task in range(20_000) if is_audited(task, 0.05)]
    assert 0.045 < len(audited) / 20_000 < 0.055
    assert audited == [task for task in range(20_000) if is_audited(task, 0.05)]  # the same every time


def test_only_tasks_above_the_threshold_are_held_back() -> None:
    audited = next(task for task in range(1000) if is_audited(task, 0.05))
    shown, held = route(0.97, audited, 0.9, 0.05)
    assert held and shown < 0.9 and 0.9 - shown < 1e-9
    assert route(0.5, audited, 0.9, 0.05) == (0.5, False)
    assert route(0.97, audited, None, 0.05) == (0.97, False)
    other = next(task for task in range(1000) if not is_audited(task, 0.05))
    assert route(0.97, other, 0.9, 0.05) == (0.97, False)


def test_predict_holds_back_the_audit_share_and_the_store_knows(make_client, image_server) -> None:
    client = make_client(accept_above=0.5, audit_share=0.3)  # every task of the fake pipeline scores 0.8
    tasks = [{"id": n, "data": {"image": f"{image_server.url}/img.png"}} for n in range(40)]
    results = client.post("/predict", json={"tasks": tasks, "label_config": CONFIG}).get_json()["results"]
    held = {n for n in range(40) if is_audited(n, 0.3)}
    assert held and len(held) < 40
    for task, result in zip(range(40), results):
        assert (result["score"] < 0.5) == (task in held), task
    store = client.app.extensions["openautoglm"].reviews.worker.store
    audited = {row[0] for row in store.db.execute("SELECT task_id FROM predictions WHERE audited = 1")}
    assert audited == {str(n) for n in held}


def test_the_report_measures_the_accepted_error_on_the_audit_sample() -> None:
    tasks = [{"task_score": 0.95, "correct": [True], "missed": 0, "shown_scores": [0.9], "audited": n < 20}
             for n in range(100)]
    tasks[0]["correct"] = [False]  # one of the 20 audited tasks needed an edit
    audit = summary(tasks)["audit"]
    assert audit["tasks"] == 20 and audit["measured_error"] == 0.05
    low, high = audit["error_interval_95"]
    assert low < 0.05 < high < 0.3


def test_metrics_show_the_reports_figures(make_client, image_server) -> None:
    client = make_client(accept_above=0.5, audit_share=0.3)
    before = client.get("/metrics").get_data(as_text=True)
    assert "openautoglm_reviewed_tasks 0.0" in before and "openautoglm_accepted_error" not in before
    tasks = [{"id": n, "data": {"image": f"{image_server.url}/img.png"}} for n in range(40)]
    results = client.post("/predict", json={"tasks": tasks, "label_config": CONFIG}).get_json()["results"]
    held = sorted(n for n in range(40) if is_audited(n, 0.3))
    for n in held:  # reviewers accept every audited task but the first as predicted
        event = {"action": "ANNOTATION_CREATED", "task": {"id": n},
                 "annotation": {"id": 1000 + n, "task": n, "result": [] if n == held[0] else results[n]["result"]}}
        assert client.post("/webhook", json=event).status_code == 200
    client.app.extensions["openautoglm"].reviews.worker.drain()
    from openautoglm.backends.label_studio.metrics import ReviewFigures

    ReviewFigures.EVERY_S = 0.0  # the figures are cached for a minute: this scrape must read them again
    try:
        text = client.get("/metrics").get_data(as_text=True)
    finally:
        ReviewFigures.EVERY_S = 60.0
    assert f"openautoglm_reviewed_tasks {float(len(held))}" in text
    assert f"openautoglm_audited_tasks {float(len(held))}" in text
    assert f'openautoglm_accepted_error{{bound="measured"}} {1 / len(held)}' in text
    assert "openautoglm_latest_task_ece" in text
