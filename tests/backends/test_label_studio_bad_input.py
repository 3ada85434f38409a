"""Every bad input gets a clear answer, the batch keeps its length, and the server keeps serving."""

from __future__ import annotations

import pytest

from tests.backends.conftest import png_header
from tests.backends.test_label_studio_contract import RECT_CONFIG


def _predict(client, *urls, config=RECT_CONFIG):
    tasks = [{"id": i, "data": {"image": url}} for i, url in enumerate(urls)]
    response = client.post("/predict", json={"tasks": tasks, "label_config": config})
    return response.status_code, response.get_json()


def test_malformed_json_is_a_400_with_a_reason(make_client) -> None:
    client = make_client()
    response = client.post("/predict", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.get_json() == {"error": "the body must be a JSON object"}
    assert client.post("/predict", json={"tasks": "x"}).status_code == 400
    assert client.get("/health").status_code == 200


def test_zero_tasks(make_client) -> None:
    assert _predict(make_client()) == (200, {"results": []})


def test_unknown_control_types_give_empty_results(make_client) -> None:
    config = ('<View><Image name="image" value="$image"/><Choices name="c" toName="image"><Choice '
              'value="a"/></Choices></View>')
    status, answer = _predict(make_client(), "/data/upload/img.png", config=config)
    assert status == 200 and answer["results"][0]["result"] == []


@pytest.mark.parametrize("url, reason", [
    pytest.param("/data/upload/missing", "HTTP", id="missing-image"),
    pytest.param("/data/upload/corrupt.jpg", "not a readable image", id="corrupt-jpeg"),
    pytest.param("/data/upload/huge", "cap", id="50MB-image"),
    pytest.param("file:///etc/passwd", "only http and https", id="file-url"),
    pytest.param("data/upload/img.png", "not a URL", id="malformed-url"),
])
def test_a_bad_image_fails_its_task_only(make_client, url: str, reason: str) -> None:
    client = make_client()
    status, answer = _predict(client, "/data/upload/img.png", url, "/data/upload/img.png")
    assert status == 200 and len(answer["results"]) == 3
    assert answer["results"][1] == {"result": [], "score": 0.0, "model_version": "fake@1+calibration-raw"}
    assert answer["results"][0]["result"] and answer["results"][2]["result"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'openautoglm_task_failures_total{{reason="{reason}"}} 1.0' in metrics


def test_an_image_over_the_pixel_budget_fails_its_task_before_decoding(make_client, image_server) -> None:
    client = make_client()
    image_server.png = png_header(13000, 13000)  # 169 million pixels: refused from the header
    status, answer = _predict(client, "/data/upload/bomb.png")
    assert status == 200 and answer["results"] == [{"result": [], "score": 0.0,
                                                    "model_version": "fake@1+calibration-raw"}]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'openautoglm_task_failures_total{reason="OPENAUTOGLM_MAX_PIXELS"} 1.0' in metrics


def test_credentials_go_only_to_the_label_studio_host(make_client, image_server) -> None:
    client = make_client()
    _predict(client, "/data/upload/img.png", f"{image_server.other_host}/foreign.png", "/data/upload/redirect")
    own, foreign = image_server.requests[0][1], image_server.headers_for("foreign.png")[0]
    assert own.get("Authorization") == "Token legacy-key"
    assert "Authorization" not in foreign
    after_redirect = [h for p, h in image_server.requests if p == "/img.png" and h.get("Host",
                                                                                       "").startswith("localhost")]
    assert after_redirect and "Authorization" not in after_redirect[0]


def test_proxy_variables_are_honoured_per_host(make_client, image_server, monkeypatch) -> None:
    """Proxies are read once per host, not per request; NO_PROXY still exempts a host."""
    from openautoglm.backends.label_studio.client import proxies_for as _proxies_for

    monkeypatch.setenv("HTTP_PROXY", image_server.url)  # the image server answers as the proxy too
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _proxies_for.cache_clear()
    try:
        status, body = _predict(make_client(), "http://images.example/img.png", "/data/upload/img.png")
    finally:
        _proxies_for.cache_clear()
    assert status == 200 and all(r["result"] for r in body["results"])
    paths = [path for path, _ in image_server.requests]
    assert "http://images.example/img.png" in paths  # the absolute URL: it went through the proxy
    assert "/data/upload/img.png" in paths  # the Label Studio host: direct


def test_personal_access_token_is_exchanged_for_a_bearer_token(make_client, image_server) -> None:
    client = make_client(label_studio_api_key="aaa.bbb.ccc")
    _predict(client, "/data/upload/img.png")
    assert image_server.headers_for("img.png")[0]["Authorization"] == "Bearer short-lived"


def test_image_cache_stays_under_its_bound(make_client, image_server) -> None:
    client = make_client(cache_max_bytes=1500)  # one ~600-byte PNG fits twice, not three times
    _predict(client, *(f"/data/upload/{i}.png" for i in range(5)))
    from openautoglm.backends.label_studio.image_cache import DiskCache

    assert DiskCache(client.settings.cache_dir, 0).size() <= 1500


def test_basic_auth_and_the_webhook_secret(make_client) -> None:
    client = make_client(basic_auth_user="lead", basic_auth_password="s3cret", webhook_secret="hook")
    assert client.get("/health").status_code == 200  # health checks stay open
    assert client.post("/predict", json={"tasks": []}).status_code == 401
    headers = {"Authorization": "Basic bGVhZDpzM2NyZXQ="}  # lead:s3cret
    assert client.post("/predict", json={"tasks": []}, headers=headers).status_code == 200
    event = {"action": "PROJECT_UPDATED"}
    assert client.post("/webhook", json=event).status_code == 401  # Label Studio sends no basic auth here
    assert client.post("/webhook", json=event, headers={"X-Openautoglm-Webhook-Secret": "hook"}).status_code == 200


def test_unknown_path_and_wrong_method(make_client) -> None:
    client = make_client()
    assert client.get("/nope").status_code == 404
    assert client.get("/predict").status_code == 405
    assert b"Traceback" not in client.get("/nope").data


def test_corrupt_image_with_ultralytics_loaded(make_client) -> None:
    """ultralytics replaces PIL's Image.open with one that raises other errors for unreadable
    bytes; a corrupt image must still fail only its own task."""
    pytest.importorskip("ultralytics")
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)

    status, answer = _predict(make_client(), "/data/upload/corrupt.jpg", "/data/upload/img.png")
    assert status == 200 and answer["results"][0]["result"] == [] and answer["results"][1]["result"]


def test_disk_cache_evicts_the_least_recently_used(tmp_path) -> None:
    import os
    import time

    from openautoglm.backends.label_studio.image_cache import DiskCache

    cache = DiskCache(tmp_path, 2500)
    cache.put("a", b"a" * 1000)
    cache.put("b", b"b" * 1000)
    past = time.time() - 60
    os.utime(cache._path("b"), (past, past))  # b last used a minute ago, a just now
    cache.put("c", b"c" * 1000)  # 3000 bytes > 2500: the least recently used goes
    assert cache.get("b") is None and cache.get("a") and cache.get("c") and cache.size() <= 2500


def test_a_task_that_is_not_an_object_fails_alone(make_client) -> None:
    client = make_client()
    tasks = [{"id": 1, "data": {"image": "/data/upload/img.png"}}, "oops", 7, None]
    answer = client.post("/predict", json={"tasks": tasks, "label_config": RECT_CONFIG})
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    assert results[0]["result"] and [r["result"] for r in results[1:]] == [[], [], []]


def test_a_body_nested_too_deeply_or_too_large_is_refused_with_its_reason(make_client) -> None:
    client = make_client(max_request_bytes=1 << 20)
    nested = client.post("/predict", data="[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert nested.status_code == 400 and nested.get_json() == {"error": "the body is nested too deeply"}
    large = client.post("/predict", data=b"{" + b" " * (2 << 20) + b"}", content_type="application/json")
    assert large.status_code == 413 and "over 1 MB (OPENAUTOGLM_MAX_REQUEST_MB)" in large.get_json()["error"]
    assert client.get("/health").status_code == 200


def test_webhooks_say_what_they_cannot_use(make_client) -> None:
    client = make_client()
    ignored = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 1}})
    assert ignored.status_code == 200 and ignored.get_json()["status"] == "ignored"
    for event, reason in [({"action": "ANNOTATION_CREATED", "task": {"id": 1}}, "needs 'annotation' with its 'id'"),
                          ({"action": "ANNOTATION_UPDATED", "annotation": {"id": 5}}, "needs 'task'"),
                          ({"action": "ANNOTATION_CREATED", "task": {"id": 1}, "annotation": {"id": 5, "result": 3}},
                           "'annotation.result' must be a list"),
                          ({"action": "ANNOTATIONS_DELETED"}, "needs 'annotations'")]:
        answer = client.post("/webhook", json=event)
        assert answer.status_code == 400 and reason in answer.get_json()["error"], event
    store = client.app.extensions["openautoglm"].store
    assert store.pending_events() == 0 and store.db.execute("SELECT COUNT(*) FROM failed_events").fetchone()[0] == 0
    created = {"action": "ANNOTATION_CREATED", "task": {"id": 1}, "annotation": {"id": 5, "result": []}}
    assert client.post("/webhook", json=created).get_json() == {"status": "queued"}
