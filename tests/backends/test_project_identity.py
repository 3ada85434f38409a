"""A project id stands for one Label Studio project: a project created anew under a known id (a new
Label Studio database) retires the old one's reviews, refit and jobs and starts from the pipeline's
calibration; an older project under a known id (a second Label Studio) is refused with the reason;
a review is matched only to a prediction made for its own project."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from openautoglm.backends.label_studio.project_calibrations import calibrations_folder
from openautoglm.backends.label_studio.refitter import ALL
from openautoglm.model.reviews.projects import project_identity
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.calibration import TASK_FEATURES, Calibration

from .conftest import FakePipeline

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="Cat"/></RectangleLabels></View>')
OLD, NEW = 1_700_000_000, 1_800_000_000  # creation seconds of two projects numbered 7


def _project(created: int, **fields) -> dict:
    """A webhook's project object, as Label Studio 1.23 serialises it."""
    iso = datetime.fromtimestamp(created, timezone.utc).isoformat().replace("+00:00", ".123456Z")
    return {"id": 7, "created_at": iso, "title": "p", **fields}


def _predict(client, image_server, created: int, task_id: int = 1):
    body = {"tasks": [{"id": task_id, "data": {"image": f"{image_server.url}/img.png"}}], "label_config": CONFIG,
            "project": f"7.{created}"}
    return client.post("/predict", json=body)


def _review(client, created: int, annotation_id: int, result: list, task_id: int = 1,
            updated: str = "2026-12-05T10:00:00Z") -> None:
    event = {"action": "ANNOTATION_CREATED", "task": {"id": task_id}, "project": _project(created),
             "annotation": {"id": annotation_id, "task": task_id, "result": result,
                            "updated_at": updated}}
    assert client.post("/webhook", json=event).status_code == 200
    client.app.extensions["openautoglm"].reviews.worker.drain()


def _reviews(store) -> set[tuple[str, str]]:
    """(annotation, project) of every review the store keeps."""
    return set(store.db.execute("SELECT DISTINCT annotation_id, project FROM outcomes").fetchall())


def _refit_file(client) -> Path:
    """A refit of project 7's own, as the refitter writes it."""
    zeros = (0.0,) * len(TASK_FEATURES)
    refit = Calibration(client.pipeline.version, 0.25, (0.0, 1.0), (0.0, 0.5), zeros, (1.0,) * len(TASK_FEATURES),
                        zeros, 0.0)
    path = calibrations_folder(client.settings.home, client.pipeline.name) / "project-7.calibration.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    refit.save(path)
    return path


def test_what_label_studio_sends_names_a_project_and_its_creation_second() -> None:
    assert project_identity("7.1700000000") == ("7", OLD)
    assert project_identity(_project(OLD)) == ("7", OLD)  # microseconds dropped, as Label Studio's uid does
    assert project_identity({"id": 7}) == ("7", None) and project_identity(7) == ("7", None)
    assert project_identity(None) == ("", None)


def test_a_project_created_anew_under_a_known_id_starts_afresh_and_keeps_the_old(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    store = client.app.extensions["openautoglm"].store
    result = _predict(client, image_server, OLD).get_json()["results"][0]["result"]
    _review(client, OLD, 5, result)
    assert len(store.reviewed_tasks(project="7")) == 1
    refit = _refit_file(client)
    own = client.post("/setup", json={"project": f"7.{OLD}"}).get_json()["model_version"]
    assert own != client.pipeline.model_version  # the old project is served its refit

    answer = client.post("/setup", json={"project": f"7.{NEW}", "hostname": "http://new:8080"})
    assert answer.status_code == 200 and answer.get_json()["model_version"] == client.pipeline.model_version
    assert store.reviewed_tasks(project="7") == []  # the new project starts from no reviews
    assert len(store.reviewed_tasks(project=f"7@{OLD}")) == 1  # the old project's are kept apart
    assert not refit.exists() and (refit.parent / "retired" / f"project-7_{OLD}.calibration.json").exists()
    assert store.projects.recorded() == {"7": (NEW, "http://new:8080")}
    client.app.extensions["openautoglm"].reviews.refitter.refit_if_due({ALL})  # Start training, no project
    assert store.calibrations.refit_log(f"7@{OLD}") == []  # a retired project is kept, never refitted
    assert f'project="7@{OLD}"' not in client.get("/metrics").get_data(as_text=True)
    # the new database's task 1 is another task: a review of it is not matched to the old prediction
    _review(client, NEW, 6, result)
    assert _reviews(store) == {("5", f"7@{OLD}")}
    # once predicted in the new project, its reviews count there
    result = _predict(client, image_server, NEW).get_json()["results"][0]["result"]
    # annotation ids start from 1 again too: the new annotation 5 leaves the old project's 5 alone
    _review(client, NEW, 5, result, updated="2026-12-05T11:00:00Z")
    assert _reviews(store) == {("5", f"7@{OLD}"), ("5", "7")}


def test_an_older_project_under_a_known_id_is_refused_with_the_reason(make_client, image_server) -> None:
    client = make_client(FakePipeline())
    store = client.app.extensions["openautoglm"].store
    result = _predict(client, image_server, NEW).get_json()["results"][0]["result"]
    for answer in (_predict(client, image_server, OLD), client.post("/setup", json={"project": f"7.{OLD}"})):
        assert answer.status_code == 409
        reason = answer.get_json()["error"]
        assert "a second Label Studio" in reason and "OPENAUTOGLM_STORE" in reason
        assert answer.status == f"409 {reason}"  # all Label Studio shows of it
    _review(client, OLD, 5, result)
    assert store.outcomes() == []
    (error,) = store.db.execute("SELECT error FROM failed_events").fetchone()
    assert "project 7 created at" in error and "a second Label Studio" in error
    _review(client, NEW, 6, result)  # the project the store holds goes on as before
    assert _reviews(store) == {("6", "7")}


def test_a_replaced_projects_jobs_stop_and_hold_no_task(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "reviews.sqlite3")
    store.projects.observe(f"7.{OLD}")
    tasks = [{"id": n, "data": {"image": f"/img/{n}.png"}} for n in range(1, 21)]
    job, _ = store.jobs.start(f"7.{OLD}", "fake@1", tasks, page_size=8)
    other, _ = store.jobs.start(f"8.{OLD}", "fake@1", [{"id": 99, "data": {}}], page_size=8)
    assert store.jobs.held([1, 20, 99]) == {"1", "20", "99"}
    assert store.projects.observe(f"7.{NEW}") == f"7@{OLD}"
    assert store.jobs.held([1, 20, 99]) == {"99"}  # another project's job goes on
    states = {j["id"]: (j["state"], j["project"]) for j in store.jobs.recent()}
    assert states == {job: ("failed", f"7@{OLD}"), other: ("running", f"8.{OLD}")}
    assert store.jobs.claim(job=job) is None
    assert store.projects.observe(f"7.{NEW}") is None  # seen again: nothing moves


def test_an_older_store_is_taken_to_hold_the_first_project_seen(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / "reviews.sqlite3")
    store.db.execute("INSERT INTO predictions (task_id, model_version, regions, project) VALUES ('1', 'v', '[]', '7')")
    assert store.projects.observe(_project(OLD)) is None  # recorded, nothing moved
    assert store.prediction(1, {"id": 7}) is not None and store.prediction(1, {"id": 8}) is None
