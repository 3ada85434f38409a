from openautoglm.backends.app import create_app


def test_health_answers_up() -> None:
    response = create_app().test_client().get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "UP"


def test_unknown_path_is_404_not_a_traceback() -> None:
    response = create_app().test_client().get("/nope")
    assert response.status_code == 404
    assert b"Traceback" not in response.data
