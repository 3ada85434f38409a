"""Local-files images read from the disk the backend shares with Label Studio
(LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT): never downloaded, never outside the root."""

from __future__ import annotations

from pathlib import Path

import pytest

from openautoglm.backends.label_studio.client import LabelStudioClient
from openautoglm.backends.label_studio.images import ImageFetcher, ImageFetchError
from openautoglm.backends.settings import Settings

from .conftest import png_bytes


@pytest.fixture
def fetcher(image_server, tmp_path: Path):
    (tmp_path / "root" / "images").mkdir(parents=True)
    (tmp_path / "root" / "images" / "a b.png").write_bytes(png_bytes(40, 30))
    (tmp_path / "secret.png").write_bytes(png_bytes(10, 10))
    settings = Settings(label_studio_url=image_server.url, label_studio_api_key="legacy-key",
                        local_files_root=tmp_path / "root", cache_dir=tmp_path / "cache")
    return ImageFetcher(settings, LabelStudioClient(image_server.url, "legacy-key"))


def test_a_local_files_image_is_read_from_the_shared_disk(fetcher, image_server) -> None:
    for url in ("/data/local-files/?d=images/a%20b.png", f"{image_server.url}/data/local-files/?d=images/a%20b.png"):
        assert fetcher.fetch(url).size == (40, 30)
    assert not image_server.requests  # nothing downloaded
    assert fetcher.fetch(f"{image_server.url}/img.png").size == (64, 48)  # anything else still is
    assert Settings.from_env({"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": "/srv/files"}).local_files_root == \
        Path("/srv/files")


@pytest.mark.parametrize("relative, reason", [("../secret.png", "is not under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"),
                                              ("/etc/passwd", "is not under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"),
                                              ("images/missing.png", "No such file"),
                                              ("", "no file named")])
def test_a_path_outside_the_root_or_missing_fails_its_task_with_the_reason(fetcher, image_server, relative,
                                                                           reason) -> None:
    with pytest.raises(ImageFetchError, match=reason):
        fetcher.fetch(f"/data/local-files/?d={relative}")
    assert not image_server.requests
