"""A /predict answers within its budget: what is predicted by then is answered, the rest goes on
in a background job that imports each page into the project, and a task a live job holds is not
predicted again by a second click (Label Studio sends what still lacks a prediction)."""

from __future__ import annotations

import time

from openautoglm.backends.settings import Settings, _budget

from .conftest import FakePipeline

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="Cat"/></RectangleLabels></View>')


class SlowFake(FakePipeline):
    """0.05 s a batch, counting every task it was asked to predict."""

    def __init__(self):
        super().__init__()
        self.predicted = 0

    def propose(self, images, labels, synonyms=None):
        time.sleep(0.05)
        self.predicted += len(images)
        return super().propose(images, labels, synonyms)


def _body(image_server, count: int, first: int = 1) -> dict:
    return {"tasks": [{"id": n, "data": {"image": f"{image_server.url}/img.png"}} for n in range(first, first + count)],
            "label_config": CONFIG, "project": "7.1700000000"}


def _wait_for_jobs(client) -> None:
    client.app.extensions["openautoglm"].runner.wait_idle(30)


def _wait_until_no_job_runs(client) -> None:
    deadline = time.monotonic() + 30
    while any(j["state"] == "running" for j in client.get("/jobs").get_json()["jobs"]) and time.monotonic() < deadline:
        time.sleep(0.05)


def _shared_pages(client, size: int) -> None:
    """Requests of more than `size` tasks are shared between workers in pages of `size`."""
    client.app.extensions["openautoglm"].requests.ANSWER_PAGE_TASKS = size


def _imported(image_server) -> list[int]:
    return [p["task"] for _, body in image_server.imported for p in body]


def test_the_rest_of_a_request_over_budget_is_imported_in_the_background(make_client, image_server) -> None:
    pipeline = SlowFake()
    client = make_client(pipeline, predict_budget_s=0.001, batch_size=2)
    _shared_pages(client, 2)
    results = client.post("/predict", json=_body(image_server, 10)).get_json()["results"]
    assert len(results) == 10  # one entry per task, in order, or Label Studio drops the batch
    answered = [task for task, r in zip(range(1, 11), results) if r]
    assert 2 <= len(answered) < 10  # the request's own first page at least, then the budget is spent
    assert all(r["result"] and r["model_version"] == pipeline.model_version for r in results if r)
    _wait_for_jobs(client)
    imported = [p for path, body in image_server.imported for p in body]
    assert all(path == "/api/projects/7/import/predictions" for path, _ in image_server.imported)
    assert sorted(answered + [p["task"] for p in imported]) == list(range(1, 11))  # each task exactly once
    assert all(p["result"] and p["model_version"] == pipeline.model_version and 0 <= p["score"] <= 1 for p in imported)
    (job,) = client.get("/jobs").get_json()["jobs"]
    assert (job["state"], job["total"], job["predicted"], job["imported"], job["failed"]) == \
        ("done", 10, 10, len(imported), 0)
    store = client.app.extensions["openautoglm"].store
    assert all(store.prediction(task) is not None for task in range(1, 11))  # kept for reviews, like any other
    assert pipeline.predicted == 10
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f"openautoglm_deferred_tasks_total {10 - len(answered)}.0" in metrics
    assert f"openautoglm_imported_tasks_total {len(imported)}.0" in metrics


def test_a_request_without_budget_uses_every_worker_and_imports_nothing(make_client, image_server) -> None:
    """One large /predict: its pages are predicted by the worker that took it and by the others
    (two apps on one store), and every task is answered in it, in order."""
    first, second = SlowFake(), SlowFake()
    client = make_client(first, predict_budget_s=None, batch_size=1)
    make_client(second, predict_budget_s=None, batch_size=1)  # a second worker: its JobRunner takes pages
    _shared_pages(client, 1)
    results = client.post("/predict", json=_body(image_server, 60)).get_json()["results"]
    assert all(r and r["result"] for r in results) and image_server.imported == []
    assert first.predicted > 0 and second.predicted > 0 and first.predicted + second.predicted == 60
    store = client.app.extensions["openautoglm"].store
    assert all(store.prediction(task) is not None for task in range(1, 61))
    (job,) = client.get("/jobs").get_json()["jobs"]
    assert (job["state"], job["total"], job["predicted"], job["imported"]) == ("done", 60, 60, 0)
    assert len(store.jobs.held(list(range(1, 61)))) == 60  # a lease longer, while Label Studio saves them


def test_a_second_click_does_not_predict_what_a_live_job_holds(make_client, image_server) -> None:
    pipeline = SlowFake()
    client = make_client(pipeline, predict_budget_s=0.001, batch_size=1)
    _shared_pages(client, 1)
    first = client.post("/predict", json=_body(image_server, 30)).get_json()["results"]
    again = client.post("/predict", json=_body(image_server, 29, first=2)).get_json()["results"]
    _wait_for_jobs(client)
    answered_first = [task for task, r in zip(range(1, 31), first) if r]
    answered_again = [task for task, r in zip(range(2, 31), again) if r]
    assert answered_first and len(answered_first) < 30
    # every task is answered or imported exactly once, whichever worker or click took it
    assert sorted(_imported(image_server) + answered_again + answered_first) == list(range(1, 31))
    assert pipeline.predicted == 30


def test_without_an_api_key_nothing_is_deferred(make_client, image_server) -> None:
    client = make_client(SlowFake(), predict_budget_s=0.001, batch_size=2, label_studio_api_key=None)
    _shared_pages(client, 2)
    results = client.post("/predict", json=_body(image_server, 6)).get_json()["results"]
    assert all(r and r["result"] for r in results) and image_server.imported == []


def test_the_budget_setting() -> None:
    assert Settings.from_env({}).predict_budget_s == 20.0
    assert Settings.from_env({"OPENAUTOGLM_PREDICT_BUDGET_S": "85"}).predict_budget_s == 85.0
    assert _budget("off", 60.0) is None and _budget("0", 60.0) is None


def test_a_whole_project_started_from_the_server(make_client, image_server) -> None:
    """POST /jobs {"project": 7}: its tasks read a page at a time, each predicted and imported once;
    started again, the job skips what holds this model version already."""
    image_server.label_config = CONFIG
    image_server.tasks = [{"id": n, "data": {"image": f"{image_server.url}/img.png"}} for n in range(1, 251)]
    pipeline = SlowFake()
    client = make_client(pipeline, batch_size=8)
    for _ in range(2):
        answer = client.post("/jobs", json={"project": 7})
        assert answer.status_code == 202
        _wait_until_no_job_runs(client)
    assert sorted(_imported(image_server)) == list(range(1, 251)) and pipeline.predicted == 250
    latest, first = client.get("/jobs").get_json()["jobs"]
    assert (first["state"], first["total"], first["imported"]) == ("done", 250, 250)
    assert (latest["state"], latest["total"], latest["imported"]) == ("done", 0, 0)
    assert client.post("/jobs", json={"project": "x"}).status_code == 400


def test_every_worker_works_on_a_job(make_client, image_server) -> None:
    """Two workers of one server (one store): the job one of them queued is predicted by both."""
    first, second = SlowFake(), SlowFake()
    client = make_client(first, predict_budget_s=0.001, batch_size=1)
    other = make_client(second, predict_budget_s=0.001, batch_size=1)  # the same store and home
    client.app.extensions["openautoglm"].requests.JOB_PAGE_TASKS = 2  # 20 pages to share
    _shared_pages(client, 1)
    results = client.post("/predict", json=_body(image_server, 40)).get_json()["results"]
    _wait_for_jobs(client)
    _wait_for_jobs(other)
    answered = [task for task, r in zip(range(1, 41), results) if r]
    assert sorted(answered + _imported(image_server)) == list(range(1, 41))  # each exactly once
    assert first.predicted > 1 and second.predicted > 0 and first.predicted + second.predicted == 40


def test_job_pages_are_large_where_the_job_is_and_still_shared(make_client) -> None:
    """One import request a page: Label Studio spends about as long on 512 predictions as on 64
    in a large project, so a large job's pages are large, but at least 16 while that keeps 64 a page."""
    requests = make_client(SlowFake()).app.extensions["openautoglm"].requests
    assert [requests.job_page_tasks(n) for n in (3, 1_100, 4_000, 9_600, 100_000)] == [64, 69, 250, 512, 512]
    requests.JOB_PAGE_TASKS = 2
    assert requests.job_page_tasks(40) == 2  # never past the largest


def test_a_large_job_page_is_predicted_a_batch_of_images_at_a_time_and_imported_at_once(make_client,
                                                                                         image_server) -> None:
    """A page of 512 tasks must not hold 512 decoded images: it is predicted in answer pages (at
    most a model batch), then imported in one request."""
    client = make_client(SlowFake(), predict_budget_s=0.001, batch_size=2)
    requests = client.app.extensions["openautoglm"].requests
    _shared_pages(client, 2)
    asked = []
    predict = requests.predictor.predict
    requests.predictor.predict = lambda tasks, *args: asked.append(len(tasks)) or predict(tasks, *args)
    results = client.post("/predict", json=_body(image_server, 30)).get_json()["results"]
    _wait_for_jobs(client)
    answered = [task for task, r in zip(range(1, 31), results) if r]
    assert sorted(answered + _imported(image_server)) == list(range(1, 31))
    assert max(asked) <= 2 and sum(asked) == 30
    # the tasks left: one page (64 at least), one import request; besides it, at most the answer page in flight
    sizes = sorted(len(body) for _, body in image_server.imported)
    assert len(sizes) <= 2 and sizes[-1] >= 30 - len(answered) - 2
