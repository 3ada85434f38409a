"""Where the server keeps its files: a data folder, never the directory it was started in."""

from __future__ import annotations

from pathlib import Path

from openautoglm.backends.settings import Settings


def test_store_and_cache_default_to_openautoglm_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"OPENAUTOGLM_HOME": str(tmp_path / "home")})
    assert settings.store_path == tmp_path / "home" / "reviews.sqlite3"
    assert settings.cache_dir == tmp_path / "home" / "cache" / "images"


def test_without_openautoglm_home_the_user_data_folder_is_used(tmp_path: Path) -> None:
    settings = Settings.from_env({"XDG_DATA_HOME": str(tmp_path)})
    assert settings.home == tmp_path / "openautoglm" and settings.store_path.parent == tmp_path / "openautoglm"
    assert Settings.from_env({}).store_path.is_absolute()  # never relative to wherever the server starts


def test_explicit_paths_win(tmp_path: Path) -> None:
    settings = Settings.from_env({"OPENAUTOGLM_HOME": str(tmp_path), "OPENAUTOGLM_STORE": str(tmp_path / "s.db"),
                                  "OPENAUTOGLM_CACHE_DIR": str(tmp_path / "c")})
    assert (settings.store_path, settings.cache_dir) == (tmp_path / "s.db", tmp_path / "c")


def test_access_log_is_on_unless_turned_off() -> None:
    assert Settings.from_env({}).access_log
    assert not Settings.from_env({"OPENAUTOGLM_ACCESS_LOG": "0"}).access_log


def test_every_request_gets_one_log_line_unless_turned_off(make_client, image_server, caplog) -> None:
    caplog.set_level("INFO", logger="openautoglm.access")
    config = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
              '<Label value="cat"/></RectangleLabels></View>')
    tasks = [{"id": i, "data": {"image": f"{image_server.url}/img.png"}} for i in range(3)]
    assert make_client().post("/predict", json={"tasks": tasks, "label_config": config}).status_code == 200
    (line,) = [r.getMessage() for r in caplog.records if r.name == "openautoglm.access"]
    assert line.startswith("POST /predict 200 tasks=3 ") and line.endswith(" ms")
    caplog.clear()
    make_client(access_log=False).get("/health")
    assert not [r for r in caplog.records if r.name == "openautoglm.access"]
