"""Each project's calibration follows its own reviews: refit after N reviewed tasks of the project
and on Start training, picked up by every worker, never replaced by a failed refit, never read
half-written; another project's scores stay as they were."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from openautoglm.backends.label_studio.refitter import _exclusive
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.scores.calibration import TASK_FEATURES, Calibration, CalibrationError
from openautoglm.model.scores.evaluation import Outcome
from openautoglm.model.scores.fitting import fit_outcomes

SHIPPED = Path(__file__).parents[2] / "model" / "scores" / "calibrations"  # the calibrations the package ships
CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="person"/><Label value="bus"/></RectangleLabels></View>')


def _prior(slope: float = 1.0) -> Calibration:
    zeros = (0.0,) * len(TASK_FEATURES)
    return Calibration("p@1", 0.25, (0.0, 1.0), (0.0, slope), zeros, (1.0,) * len(TASK_FEATURES), zeros, 0.0)


def _team_outcomes(tasks: int, seed: int = 0) -> list[Outcome]:
    """Regions right with probability score - 0.3: a prior of p = score is over-confident."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(tasks):
        scores = rng.uniform(0.3, 1.0, 3)
        outcomes.append(Outcome(scores, rng.random(3) < scores - 0.3, [], 0))
    return outcomes


def test_a_prior_holds_on_a_few_reviews_and_gives_way_to_many() -> None:
    at = np.array([0.5, 0.7, 0.9])
    few = fit_outcomes(_team_outcomes(5), _team_outcomes(5), "p@1", 0.25, prior=_prior())
    many = fit_outcomes(_team_outcomes(2000), _team_outcomes(2000), "p@1", 0.25, prior=_prior())
    assert np.abs(few.region_probability(at) - at).max() < np.abs(few.region_probability(at) - (at - 0.3)).max()
    assert np.abs(many.region_probability(at) - (at - 0.3)).max() < 0.06
    assert few.provenance["prior"] == _prior().digest
    with pytest.raises(Exception, match="no reviewed tasks"):
        fit_outcomes([], [], "p@1", 0.25, prior=_prior())


def test_reviews_of_the_lowest_scores_only_leave_the_prior_where_no_review_is() -> None:
    """A team reviewing lowest score first: the reviews cover scores below 0.5 only. Fitted on them
    alone, the map past them is whatever the highest reviewed scores say; with the project's
    unreviewed tasks given, the prior (here right: p = score) stands where no review is, and the
    reviewed range still follows the reviews."""
    from openautoglm.model.scores.scoring import ImageEvidence

    rng = np.random.default_rng(3)
    tasks = [rng.uniform(0.25, 1.0, 2) for _ in range(1500)]
    truth = [Outcome(scores, rng.random(2) < scores, [], 0) for scores in tasks]
    low = [o for o in truth if o.scores.max() < 0.5]
    unreviewed = [ImageEvidence.of_scores(o.scores.tolist()) for o in truth if o.scores.max() >= 0.5]
    plain = fit_outcomes(low, low, "p@1", 0.25, prior=_prior())
    covered = fit_outcomes(low, low, "p@1", 0.25, prior=_prior(), unreviewed=unreviewed)
    high = np.array([0.7, 0.9])
    assert np.abs(plain.region_probability(high) - high).max() > 0.15  # one value past the reviews
    assert np.abs(covered.region_probability(high) - high).max() < 0.05
    assert abs(covered.region_probability(np.array([0.35]))[0] - 0.35) < 0.1
    assert covered.provenance["prior"] == plain.provenance["prior"]


def test_concurrent_readers_never_see_a_half_written_calibration(tmp_path: Path) -> None:
    path, errors, done = tmp_path / "c.json", [], threading.Event()
    _prior().save(path)

    def read():
        while not done.is_set():
            try:
                Calibration.load(path)
            except CalibrationError as error:
                errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    for index in range(300):
        _prior(0.5 + index / 1000).save(path)
    done.set()
    reader.join()
    assert not errors


@pytest.fixture
def served_yolo(shared, monkeypatch):
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    return lambda: Pipeline.load("yolo")


def _predict(client, image_server, bus, count: int) -> list[dict]:
    buffer = io.BytesIO()
    bus.save(buffer, "JPEG")
    image_server.png = buffer.getvalue()
    tasks = [{"id": i, "data": {"image": f"{image_server.url}/bus-{i}.png"}} for i in range(1, count + 1)]
    body = {"tasks": tasks, "label_config": CONFIG, "project": "7.1700000000"}
    return client.post("/predict", json=body).get_json()["results"]


def _review(client, task_id: int, result: list[dict]) -> None:
    event = {"action": "ANNOTATION_CREATED", "task": {"id": task_id},
             "annotation": {"id": 100 + task_id, "task": task_id, "result": result}}
    assert client.post("/webhook", json=event).status_code == 200


def _version(client, project: str = "7.1700000000") -> str:
    """The model version the server gives the project (Label Studio asks /setup for it)."""
    return client.post("/setup", json={"project": project}).get_json()["model_version"]


def _calibration_file(client, project: str = "7") -> Path:
    return client.app.extensions["openautoglm"].predictor.calibrations.path(project)


def _wait_for_version(client, old: str, timeout: float = 30.0, project: str = "7.1700000000") -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = _version(client, project)
        if version != old:
            return version
        time.sleep(0.1)
    raise AssertionError(f"model_version stayed {old}")


def test_the_server_refits_after_n_reviews_and_every_worker_serves_it(make_client, image_server, bus,
                                                                      served_yolo, tmp_path) -> None:
    first = make_client(served_yolo(), refit_every=3)
    second = make_client(served_yolo(), refit_every=3)  # another worker of the same server
    shipped = _version(first)
    assert _version(second) == shipped == first.get("/health").get_json()["model_version"]
    results = _predict(first, image_server, bus, 3)
    _review(first, 1, results[0]["result"])  # accepted as predicted
    _review(first, 2, [])  # every region wrong
    first.app.extensions["openautoglm"].reviews.worker.drain()
    time.sleep(0.5)
    assert _version(first) == shipped, "2 reviews < OPENAUTOGLM_REFIT_EVERY"
    _review(first, 3, results[2]["result"][:1])
    refitted = _wait_for_version(first, shipped)
    calibration = Calibration.load(_calibration_file(first))
    assert refitted.endswith(f"+calibration-{calibration.digest}")
    assert calibration.provenance["reviewed_tasks"] == 3 and calibration.provenance["prior"] in shipped
    assert calibration.provenance["project"] == "7"
    assert _version(second) == refitted  # no restart
    assert first.get("/health").get_json()["model_version"] == shipped  # the pipeline's own, for other projects
    again = _predict(second, image_server, bus, 1)[0]
    assert again["model_version"] == refitted
    first.app.extensions["openautoglm"].reviews.refitter.wait_idle()
    assert 'openautoglm_refits_total{result="done"} 1.0' in first.get("/metrics").get_data(as_text=True)
    # a restarted worker starts from the project's file
    assert _version(make_client(served_yolo(), refit_every=3)) == refitted


def test_a_failed_refit_keeps_the_calibration_and_is_counted(make_client, image_server, bus, served_yolo) -> None:
    client = make_client(served_yolo(), refit_every=1)
    shipped = _version(client)
    refitter = client.app.extensions["openautoglm"].reviews.refitter
    assert refitter.refit_if_due({"7"}) == {}  # Start training before any review: nothing to fit
    results = _predict(client, image_server, bus, 1)
    store = client.app.extensions["openautoglm"].reviews.worker.store
    store.db.execute("UPDATE predictions SET near_misses = 'not json'")  # a corrupt row
    _review(client, 1, results[0]["result"])
    client.app.extensions["openautoglm"].reviews.worker.drain()
    deadline = time.monotonic() + 20
    text = ""
    while 'result="failed"} 2.0' not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = client.get("/metrics").get_data(as_text=True)
    assert 'openautoglm_refits_total{result="failed"} 2.0' in text
    assert _version(client) == shipped
    assert not _calibration_file(client).exists()


def test_start_training_refits_at_once_and_one_worker_refits_at_a_time(make_client, image_server, bus,
                                                                       served_yolo) -> None:
    client = make_client(served_yolo(), refit_every=1000)
    shipped = _version(client)
    results = _predict(client, image_server, bus, 1)
    _review(client, 1, results[0]["result"])
    refitter = client.app.extensions["openautoglm"].reviews.refitter
    path = _calibration_file(client)
    client.app.extensions["openautoglm"].reviews.worker.drain()
    with _exclusive(path.with_name("refit.lock")) as mine:  # another worker is refitting
        assert mine and refitter.refit_if_due({"7"}) == {}
    assert client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 7}}).status_code == 200
    refitted = _wait_for_version(client, shipped)
    assert json.loads(path.read_text())["provenance"]["trigger"] == "start training"
    assert refitted != shipped


def test_a_refit_rescores_the_open_tasks_in_label_studio_and_resumes_after_an_error(
        make_client, image_server, bus, served_yolo) -> None:
    client = make_client(served_yolo(), refit_every=2)
    shipped = _version(client)
    before = _predict(client, image_server, bus, 4)
    image_server.import_refusals = 1000  # Label Studio refuses imports for now
    _review(client, 1, before[0]["result"])
    _review(client, 2, [])
    refitted = _wait_for_version(client, shipped)
    reviews = client.app.extensions["openautoglm"].reviews
    reviews.worker.drain()
    reviews.refitter.wait_idle()
    assert reviews.rescorer.last["tasks"] == 0 and "HTTP 503" in reviews.rescorer.last["error"]
    assert not image_server.imported
    image_server.import_refusals = 0
    reviews.refitter.refit_if_due()  # not due again: only finishes the cut-short pass
    ((path, imported),) = image_server.imported
    assert path == "/api/projects/7/import/predictions"
    assert [p["task"] for p in imported] == [3, 4] and {p["model_version"] for p in imported} == {refitted}
    store, calibration = reviews.worker.store, Calibration.load(_calibration_file(client))
    assert calibration.provenance["unreviewed_tasks"] == 2  # where the prior stands in for reviews
    for prediction, old in zip(imported, before[2:]):
        (regions,) = store.db.execute("SELECT regions FROM predictions WHERE task_id = ?",
                                      (str(prediction["task"]),)).fetchone()
        raw = [r["raw"] for r in json.loads(regions)]
        shipped = Calibration.load(SHIPPED / "yolo.json")
        assert [r["score"] for r in old["result"]] == pytest.approx(shipped.region_probability(raw).tolist())
        assert [r["score"] for r in prediction["result"]] == pytest.approx(calibration.region_probability(raw).tolist())
        assert [r["id"] for r in prediction["result"]] == [r["id"] for r in old["result"]]
        assert prediction["score"] != old["score"]
    assert store.unreviewed(refitted.split("+calibration-")[0], "7", refitted) == []  # nothing left to re-score
    deadline = time.monotonic() + 10
    while image_server.project_version != refitted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert image_server.project_version == refitted


def test_a_task_deleted_in_label_studio_is_forgotten_and_does_not_stop_the_rescoring(
        make_client, image_server, bus, served_yolo) -> None:
    client = make_client(served_yolo(), refit_every=1)
    shipped = _version(client)
    before = _predict(client, image_server, bus, 4)
    image_server.deleted_tasks = {3}
    _review(client, 1, before[0]["result"])
    refitted = _wait_for_version(client, shipped)
    reviews = client.app.extensions["openautoglm"].reviews
    reviews.worker.drain()
    reviews.refitter.wait_idle()
    imported = [p["task"] for _, body in image_server.imported for p in body]
    assert imported == [2, 4] and reviews.rescorer.last["error"] is None
    store = reviews.worker.store
    assert store.prediction(3) is None and store.unreviewed(refitted.split("+calibration-")[0], "7", refitted) == []


def test_rescoring_a_task_the_second_stage_saw_uses_its_evidence(image_server, tmp_path: Path) -> None:
    """Re-scoring recomputes a cascaded task's scores from its stored second-stage evidence through
    the calibration's cascade maps, and the other tasks' without them."""
    from openautoglm.backends.label_studio.client import LabelStudioClient
    from openautoglm.backends.label_studio.rescore import QueueRescorer
    from openautoglm.converters import Box, Region, Shape
    from openautoglm.model.reviews.store import ReviewStore
    from openautoglm.model.scores.scoring import ImageEvidence, score

    calibration = Calibration.load(SHIPPED / "yolo-cascade.json")
    assert calibration.cascade is not None
    regions = [Region("bus", Shape.BOX, Box(0, 0, 50, 50), score=0.6)]
    looked, plain_evidence = ImageEvidence.of_scores([0.6], [0.1], [0.9], [0.7]), ImageEvidence.of_scores([0.6], [0.1])
    result = [{"id": f"{task}-0-label", "type": "rectanglelabels", "value": {}} for task in (3, 4)]
    store = ReviewStore(tmp_path / "reviews.sqlite3")
    store.save_predictions("p@1+calibration-old", [(3, regions, looked, 0.4), (4, regions, plain_evidence, 0.4)],
                           project="7.1700000000", results={3: [result[0]], 4: [result[1]]})
    done = QueueRescorer(LabelStudioClient(image_server.url, "legacy-key"), store, _calibrations(calibration), None,
                         0.0).rescore("7")
    assert done["tasks"] == 2 and done["error"] is None
    sent = {p["task"]: p for _, body in image_server.imported for p in body}
    cascaded, plain = score(looked, calibration), score(plain_evidence, calibration)
    assert sent[3]["score"] == pytest.approx(cascaded[1]) and sent[4]["score"] == pytest.approx(plain[1])
    assert sent[3]["result"][0]["score"] == pytest.approx(cascaded[0][0])
    assert sent[4]["result"][0]["score"] == pytest.approx(plain[0][0])
    assert cascaded != plain


def test_a_rescoring_pass_cut_short_after_label_studio_took_a_batch_sends_nothing_twice(
        image_server, tmp_path: Path, monkeypatch) -> None:
    """The pass dies between Label Studio taking a batch and the store noting it (kill -9, or an
    import answered after its timeout): the next pass asks Label Studio, and no task gets the new
    version twice."""
    from openautoglm.backends.label_studio.client import LabelStudioClient
    from openautoglm.backends.label_studio.rescore import QueueRescorer
    from openautoglm.converters import Box, Region, Shape
    from openautoglm.model.reviews.store import ReviewStore
    from openautoglm.model.scores.scoring import ImageEvidence

    regions = [Region("bus", Shape.BOX, Box(0, 0, 50, 50), score=0.6)]
    store = ReviewStore(tmp_path / "reviews.sqlite3")
    store.save_predictions("p@1+calibration-old", [(t, regions, ImageEvidence.of_scores([0.6], [0.1]), 0.4)
                                                   for t in (3, 4, 5)], project="7.1700000000",
                           results={t: [{"id": f"{t}-0-label", "type": "rectanglelabels", "value": {}}]
                                    for t in (3, 4, 5)})
    rescorer = QueueRescorer(LabelStudioClient(image_server.url, "legacy-key"), store,
                             _calibrations(Calibration.load(SHIPPED / "yolo.json")), None, 0.0)
    real = store.rescored
    monkeypatch.setattr(store, "rescored", lambda *args: (_ for _ in ()).throw(OSError("killed")))
    assert rescorer.rescore("7")["error"] == "OSError: killed"
    monkeypatch.setattr(store, "rescored", real)
    assert sorted(p["task"] for _, body in image_server.imported for p in body) == [3, 4, 5]  # Label Studio has them
    assert rescorer.rescore("7") == {**rescorer.last, "tasks": 3, "error": None}
    assert sorted(p["task"] for _, body in image_server.imported for p in body) == [3, 4, 5]  # once each
    assert store.unreviewed("p@1", "7", "p@1+calibration-new") == []


def _calibrations(calibration: Calibration):
    """Stands in for ProjectCalibrations: every project of weights p@1 has `calibration`, version "new"."""
    from types import SimpleNamespace

    return SimpleNamespace(pipeline=SimpleNamespace(version="p@1"),
                           scoring=lambda project: (calibration, "p@1+calibration-new"))


def test_reviews_in_one_project_leave_another_projects_scores_bit_identical(make_client, image_server) -> None:
    """Two projects on one backend: 150 reviews in project B refit B's calibration only; project A's
    answers, model version and stored predictions stay exactly as they were, and nothing of A is
    re-scored."""
    client = make_client(refit_every=150)

    def predict(project: str, ids: range) -> list[dict]:
        tasks = [{"id": i, "data": {"image": f"{image_server.url}/t-{i}.png"}} for i in ids]
        return client.post("/predict", json={"tasks": tasks, "label_config": CONFIG,
                                             "project": project}).get_json()["results"]

    project_a, project_b = "3.1700000000", "4.1700000001"
    before = predict(project_a, range(1, 9))  # one page: answered here, not held by a job
    stored_before = client.app.extensions["openautoglm"].store.db.execute(
        "SELECT task_id, model_version, regions, task_score, result FROM predictions ORDER BY task_id").fetchall()
    answers = predict(project_b, range(101, 251))
    for task_id, answer in zip(range(101, 251), answers):  # one in two predictions wrong: 0.8 over-confident
        event = {"action": "ANNOTATION_CREATED", "task": {"id": task_id},
                 "annotation": {"id": 10_000 + task_id, "task": task_id,
                                "result": answer["result"] if task_id % 2 else []}}
        assert client.post("/webhook", json=event).status_code == 200
    refitted = _wait_for_version(client, before[0]["model_version"], project=project_b)
    client.app.extensions["openautoglm"].reviews.refitter.wait_idle()
    assert Calibration.load(_calibration_file(client, "4")).provenance["reviewed_tasks"] == 150
    assert predict(project_b, range(300, 301))[0]["score"] != before[0]["score"]  # B learnt from its reviews
    assert _version(client, project_a) == before[0]["model_version"] != refitted
    assert predict(project_a, range(1, 9)) == before  # bit-identical: same JSON, same floats
    assert not _calibration_file(client, "3").exists()
    assert client.app.extensions["openautoglm"].store.db.execute(
        "SELECT task_id, model_version, regions, task_score, result FROM predictions WHERE project = '3' "
        "ORDER BY task_id").fetchall() == stored_before
    assert not [path for path, _ in image_server.imported if "/projects/3/" in path]
