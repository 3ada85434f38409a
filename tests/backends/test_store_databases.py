"""The review store behaves the same on SQLite and on a real PostgreSQL server, and server
replicas sharing a PostgreSQL store handle each webhook event once and serve one calibration."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from openautoglm.converters import Box, Region, Shape
from openautoglm.model.reviews.store import ReviewStore, match
from openautoglm.model.scores.scoring import ImageEvidence


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path: Path) -> str | Path:
    if request.param == "sqlite":
        return tmp_path / "reviews.sqlite3"
    return request.getfixturevalue("postgres_url")


def _regions(*scores: float, near: list[float] = ()) -> tuple[list[Region], ImageEvidence]:
    """Cars side by side with these detector scores, and their evidence with these near misses."""
    return ([Region("car", Shape.BOX, Box(i * 20, 0, i * 20 + 10, 10), score=s) for i, s in enumerate(scores)],
            ImageEvidence.of_scores(scores, near))


def test_the_store_round_trips_on_both_databases(location) -> None:
    store = ReviewStore(location)
    ReviewStore(location)  # opening an existing store again: schema and migrations are idempotent
    version = "p@1+calibration-a"
    store.save_predictions(version, [(1, *_regions(0.9, 0.4, near=[0.1, 0.2]), 0.7), (2, *_regions(0.8), 0.9),
                                     (3, *_regions(0.6, near=[0.05]), 0.5)],
                           audited={2}, project="4.17000", results={1: [{"id": "1-0-label"}], 3: [{"id": "3-0-label"}]})
    store.save_predictions(version, [(3, *_regions(0.65, near=[0.05]), 0.55)], project="4.17000",
                           results={3: [{"id": "3-0-label"}]})  # a re-prediction replaces the row
    predicted = store.prediction(1)[1]
    store.record(11, 1, version, match(predicted, [Region("car", Shape.BOX, Box(0, 0, 10, 10))]))
    store.record(11, 1, version, match(predicted, [Region("car", Shape.BOX, Box(0, 0, 10, 10)),
                                                   Region("car", Shape.BOX, Box(200, 0, 210, 10))]))  # an update
    store.record(12, 2, version, [])
    tasks = store.reviewed_tasks("p@1")
    assert [(t["scores"], t["correct"], t["missed"], t["near_misses"], t["audited"]) for t in tasks] == [
        ([0.9, 0.4], [True, False], 1, [0.1, 0.2], False), ([], [], 0, [], True)]
    assert store.reviewed_count("p@1") == {"4": 2} and store.reviewed_count("q@1") == {}
    assert len(store.reviewed_tasks("p@1", "4")) == 2 and store.reviewed_tasks("p@1", "5") == []
    assert tasks[0]["labels"] == ["car", "car"]  # what a refit's per-label offsets are fitted by
    assert [e.labels for e in store.open_evidence("p@1", "4")] == [["car"]]
    assert store.unreviewed("p@1", "4", version) == []  # all under the current version
    assert store.unreviewed("p@1", "5", "p@1+calibration-b") == []  # another project's
    (open_task,) = store.unreviewed("p@1", "4.17000", "p@1+calibration-b")
    assert (open_task["task_id"], open_task["project"], open_task["result"]) == ("3", "4", [{"id": "3-0-label"}])
    assert open_task["regions"][0]["raw"] == pytest.approx(0.65)
    store.rescored("p@1+calibration-b", [("3", open_task["regions"], 0.6, open_task["result"])])
    assert store.unreviewed("p@1", "4", "p@1+calibration-b") == []
    store.delete([12])
    assert [t["audited"] for t in store.reviewed_tasks()] == [False]
    assert [o["kind"] for o in store.outcomes()] == ["prediction", "prediction", "missed"]
    store.calibrations.save("p@1", "4", "abc", '{"x": 1}')
    store.calibrations.save("p@1", "4.17000", "def", '{"x": 2}')
    store.calibrations.save("p@1", "5", "ghi", '{"x": 3}')
    assert store.calibrations.get("p@1", "4") == ("def", '{"x": 2}') and store.calibrations.get("q@1", "4") is None
    assert store.calibrations.digests("p@1") == {"4": "def", "5": "ghi"}


def test_a_store_from_before_per_project_calibration_keys_its_reviews_by_project(location) -> None:
    """Outcomes recorded before they had a project column, and predictions keyed by what Label
    Studio sent ("id.timestamp"), are keyed by project id when the store is opened again."""
    store = ReviewStore(location)
    store.save_predictions("p@1+calibration-a", [(1, *_regions(0.9), 0.7)], project="4.17000")
    store.save_predictions("p@1+calibration-a", [(2, *_regions(0.8), 0.7)])  # no project
    store.record(11, 1, "p@1+calibration-a", [])
    store.record(12, 2, "p@1+calibration-a", [])
    store.db.execute("ALTER TABLE outcomes DROP COLUMN project")  # the schema before this change
    store.db.execute("UPDATE predictions SET project = '4.17000' WHERE task_id = '1'")
    reopened = ReviewStore(location)
    assert reopened.reviewed_count("p@1") == {"4": 1, "": 1}
    assert reopened.db.execute("SELECT project FROM predictions WHERE task_id = '1'").fetchone() == ("4",)
    assert len(reopened.reviewed_tasks("p@1", "4.17000")) == 1 and len(reopened.reviewed_tasks("p@1")) == 2


def test_a_lost_postgresql_connection_is_opened_again(postgres_url) -> None:
    store = ReviewStore(postgres_url)
    store.save_event({"action": "X"})
    killer = ReviewStore(postgres_url)  # another session ends this thread's one, as a server restart would
    pid = store.db.execute("SELECT pg_backend_pid()").fetchone()[0]
    killer.db.execute("SELECT pg_terminate_backend(?)", (pid,))
    import psycopg

    with pytest.raises(psycopg.OperationalError):
        store.pending_events()  # the statement in flight fails ...
    assert store.pending_events() == 1  # ... the next one reconnects


def test_events_are_handled_once_in_order_by_concurrent_workers(location) -> None:
    store = ReviewStore(location)
    for number in range(120):
        store.save_event({"action": "X", "n": number})
    store.save_event({"action": "BAD"})
    handled, lock = [], threading.Lock()

    def handle(event: dict) -> None:
        if event["action"] == "BAD":
            raise ValueError("cannot")
        with lock:
            handled.append(event["n"])

    def work() -> None:
        while store.handle_pending(handle, limit=7):
            pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handled == list(range(120)) and store.pending_events() == 0
    (error,) = store.db.execute("SELECT error FROM failed_events").fetchall()
    assert "cannot" in error[0]


def test_replicas_sharing_a_postgresql_store(make_client, image_server, bus, postgres_url, shared, tmp_path,
                                             monkeypatch) -> None:
    from openautoglm.backends.label_studio.project_calibrations import ProjectCalibrations
    from openautoglm.model.inference.pipeline import Pipeline

    from .test_refit import _predict, _review, _version, _wait_for_version

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    monkeypatch.setattr(ProjectCalibrations, "SHARED_POLL_S", 0.0)
    first = make_client(Pipeline.load("yolo"), store_path=postgres_url, home=tmp_path / "a", refit_every=2)
    second = make_client(Pipeline.load("yolo"), store_path=postgres_url, home=tmp_path / "b", refit_every=2)
    shipped = _version(first)
    results = _predict(first, image_server, bus, 3)
    _review(second, 1, results[0]["result"])  # the webhook reaches the other replica
    _review(first, 2, [])
    refitted = _wait_for_version(first, shipped)
    assert _wait_for_version(second, shipped) == refitted  # one refit, served by both
    store = first.app.extensions["openautoglm"].reviews.worker.store
    assert store.reviewed_count(Pipeline.load("yolo", calibration=None).version) == {"7": 2}
    assert store.calibrations.get(refitted.split("+calibration-")[0], "7")[0] == refitted.split("+calibration-")[1]
    for client in (first, second):
        client.app.extensions["openautoglm"].reviews.refitter.wait_idle()
    deadline = time.monotonic() + 10
    while store.unreviewed(refitted.split("+calibration-")[0], "7", refitted) and time.monotonic() < deadline:
        time.sleep(0.1)
    imported = [p["task"] for _, body in image_server.imported for p in body]
    assert imported == [3]  # the open task, re-scored once, by the replica that refitted


def test_a_replica_never_refits_the_reviews_another_replica_refitted(make_client, image_server, bus, postgres_url,
                                                                      shared, tmp_path, monkeypatch) -> None:
    """Within the polling interval a replica has not seen another's refit yet; when it takes the
    refit lock it asks the store first, so the same reviews are refitted once, not once per replica
    (the load benchmark found twice as many refits as reviews called for)."""
    from openautoglm.backends.label_studio.project_calibrations import ProjectCalibrations
    from openautoglm.model.inference.pipeline import Pipeline

    from .test_refit import _predict, _review

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    monkeypatch.setattr(ProjectCalibrations, "SHARED_POLL_S", 3600.0)
    clients = [make_client(Pipeline.load("yolo"), store_path=postgres_url, home=tmp_path / name, refit_every=2)
               for name in ("a", "b")]
    results = _predict(clients[0], image_server, bus, 2)
    _review(clients[0], 1, results[0]["result"])
    _review(clients[1], 2, [])
    store = ReviewStore(postgres_url)
    version = Pipeline.load("yolo", calibration=None).version
    deadline = time.monotonic() + 30
    while store.calibrations.get(version, "7") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.calibrations.get(version, "7") is not None
    refitters = [client.app.extensions["openautoglm"].reviews.refitter for client in clients]
    for refitter in refitters:
        refitter.wait_idle()
    assert [refitter.refit_if_due() for refitter in refitters] == [{}, {}]  # nothing new since that refit

    def refits(client) -> float:
        lines = client.get("/metrics").get_data(as_text=True).splitlines()
        done = 'openautoglm_refits_total{result="done"}'
        return sum(float(line.split()[-1]) for line in lines if line.startswith(done))

    assert [refits(client) for client in clients] == [1, 1]  # one refit, counted in the store both read
    assert len({client.get("/health").get_json()["model_version"] for client in clients}) == 1


def test_prelabelling_jobs_on_both_databases(location) -> None:
    from openautoglm.model.reviews import jobs as job_rules

    store, other_worker = ReviewStore(location), ReviewStore(location)
    tasks = [{"id": n, "data": {"image": f"/data/upload/{n}.png"}} for n in range(1, 5)]
    job, held = store.jobs.start("7", "p@1+calibration-a", tasks, "<View/>", page_size=2)
    assert held == tasks and other_worker.jobs.held([2, 3, 9]) == {"2", "3"}  # another worker sees them
    second, mine = other_worker.jobs.start("7", "p@1+calibration-a", tasks[2:] + [{"id": 5, "data": {}}])
    assert mine == [{"id": 5, "data": {}}]  # a live job's tasks are not taken again
    pages = [store.jobs.claim(), other_worker.jobs.claim()]  # two workers, two pages of the first job
    claimed = [(p["job"], p["number"], [t["id"] for t in p["tasks"]]) for p in pages]
    assert claimed == [(job, 0, [1, 2]), (job, 1, [3, 4])]
    assert pages[0]["config"] == "<View/>" and pages[0]["project"] == "7"
    assert store.jobs.claim()["job"] == second  # the claimed pages are not handed out again ...
    silent = store.jobs.claim(now=time.time() + job_rules.PAGE_LEASE_S + 1)  # ... until their worker is silent
    assert (silent["job"], silent["number"]) == (job, 0)
    store.jobs.page_done(job, 0, imported=2)
    other_worker.jobs.page_done(job, 1, imported=0, failed_tasks=[3, 4])  # failed: free for the next click
    assert store.jobs.held([1, 2, 3, 4]) == {"1", "2"}  # held a lease longer: Label Studio may have listed them
    assert store.jobs.held([1, 2], now=time.time() + job_rules.LEASE_S + 1) == set()
    latest = {j["id"]: j for j in store.jobs.recent()}
    assert (latest[job]["state"], latest[job]["total"], latest[job]["imported"], latest[job]["failed"]) == \
        ("done", 4, 2, 2)
    assert latest[second]["state"] == "running" and latest[second]["total"] == 1
    feeding, _ = store.jobs.start("8", "p@1+calibration-a", [], feeding=True)
    store.jobs.feed(feeding, [{"id": 9, "data": {}}])
    assert {j["id"]: j["state"] for j in store.jobs.recent()}[feeding] == "running"
    store.jobs.fed(feeding, "HTTPError: 500")
    assert {j["id"]: j["state"] for j in store.jobs.recent()}[feeding] == "failed"


def test_a_request_answering_from_pages_on_both_databases(location) -> None:
    """A large /predict's pages: answered pages kept for the request, the rest turned into import
    pages when it stops waiting, a page in flight then imported by its worker."""
    store, other_worker = ReviewStore(location), ReviewStore(location)
    older, _ = store.jobs.start("7", "v", [{"id": 100, "data": {}}], page_size=1)
    tasks = [{"id": n, "data": {}} for n in range(1, 8)]
    job, _ = store.jobs.start("7", "v", tasks, page_size=2, answering=True)
    assert other_worker.jobs.claim()["job"] == job  # a waiting request's pages come before older jobs'
    assert other_worker.jobs.page_answered(job, 0, [{"task": 1, "score": 0.5}, {"task": 2, "score": 0.6}])
    in_flight = other_worker.jobs.claim(job=job)
    assert (in_flight["number"], {j["id"]: j["state"] for j in store.jobs.recent()}[job]) == (1, "answering")
    assert store.jobs.pages_left(job) == 3
    answered, left = store.jobs.stop_answering(job, page_tasks=lambda count: 64)
    assert answered == {0: [{"task": 1, "score": 0.5}, {"task": 2, "score": 0.6}]}
    assert [t["id"] for t in left] == [5, 6, 7]  # the unclaimed pages, as one import page
    assert not other_worker.jobs.page_answered(job, 1, [{"task": 3}, {"task": 4}])  # too late: imported instead
    other_worker.jobs.page_done(job, 1, imported=2)
    page = store.jobs.claim(job=job)
    assert [t["id"] for t in page["tasks"]] == [5, 6, 7] and store.jobs.claim(job=job) is None
    store.jobs.page_done(job, page["number"], imported=3)
    state = {j["id"]: j for j in store.jobs.recent()}[job]
    assert (state["state"], state["total"], state["predicted"], state["imported"]) == ("done", 7, 7, 5)
    assert store.jobs.held(list(range(1, 8))) == {str(n) for n in range(1, 8)}  # while Label Studio saves them
    assert store.jobs.claim()["job"] == older


def test_a_project_created_anew_is_retired_and_an_older_one_refused_on_both_databases(location) -> None:
    from openautoglm.model.reviews.projects import ForeignProject

    store = ReviewStore(location)
    version = "p@1+calibration-a"
    assert store.projects.observe("4.1700000000", "http://old:8080") is None
    store.save_predictions(version, [(1, *_regions(0.9), 0.7), (2, *_regions(0.8), 0.9)], project="4.1700000000")
    store.record(11, 1, version, match(store.prediction(1)[1], []))
    store.jobs.start("4.1700000000", version, [{"id": 3, "data": {}}], page_size=8)
    assert store.reviewed_count("p@1") == {"4": 1} and store.open_task_scores("4") == [0.9]
    assert store.projects.observe("4.1800000000") == "4@1700000000"
    assert store.reviewed_count("p@1") == {"4@1700000000": 1}
    assert store.open_task_scores("4") == [] and store.open_task_scores("4@1700000000") == [0.9]
    assert store.jobs.held([3]) == set() and store.jobs.recent()[0]["state"] == "failed"
    with pytest.raises(ForeignProject, match="a second Label Studio"):
        store.projects.observe("4.1700000000")
    assert store.projects.recorded() == {"4": (1800000000, None)}  # the old project's host is not the new one's
