"""Image URLs come from task data, which anyone who can edit a project writes: link-local and
metadata addresses are never fetched, and OPENAUTOGLM_IMAGE_HOSTS narrows the rest."""

from __future__ import annotations

import socket

import pytest

from openautoglm.backends.label_studio.client import LabelStudioClient
from openautoglm.backends.label_studio.images import ImageFetcher, ImageFetchError
from openautoglm.backends.settings import Settings


def _fetcher(tmp_path, image_server, **overrides) -> ImageFetcher:
    settings = Settings(label_studio_url=image_server.url, label_studio_api_key="legacy-key",
                        cache_dir=tmp_path / "cache", store_path=tmp_path / "store.sqlite3", **overrides)
    return ImageFetcher(settings, LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key))


@pytest.mark.parametrize("url", [
    pytest.param("http://169.254.169.254/latest/meta-data/", id="aws-gcp-azure-metadata"),
    pytest.param("http://[fe80::1]/img.png", id="ipv6-link-local"),
    pytest.param("http://100.100.100.200/latest/meta-data/", id="alibaba-metadata"),
])
def test_metadata_and_link_local_addresses_are_refused(tmp_path, image_server, url: str) -> None:
    with pytest.raises(ImageFetchError, match="link-local or cloud metadata"):
        _fetcher(tmp_path, image_server).fetch(url)


def test_a_name_resolving_to_a_metadata_address_is_refused(tmp_path, image_server, monkeypatch) -> None:
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "metadata.internal.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ImageFetchError, match="metadata.internal.test resolves to 169.254.169.254"):
        _fetcher(tmp_path, image_server).fetch("http://metadata.internal.test/latest/meta-data/")


def test_a_redirect_to_a_metadata_address_is_refused_before_it_is_followed(tmp_path, image_server) -> None:
    with pytest.raises(ImageFetchError, match="169.254.169.254.*link-local"):
        _fetcher(tmp_path, image_server).fetch(f"{image_server.url}/to-metadata")
    assert [path for path, _ in image_server.requests] == ["/to-metadata"]


def test_redirects_are_followed_and_credentials_stay_on_the_label_studio_host(tmp_path, image_server) -> None:
    image = _fetcher(tmp_path, image_server).fetch(f"{image_server.url}/redirect")
    assert image.size == (64, 48)
    assert image_server.headers_for("/redirect")[0]["Authorization"] == "Token legacy-key"
    assert "Authorization" not in image_server.headers_for("/img.png")[0]  # localhost is another host


def test_the_allow_list_admits_only_its_hosts(tmp_path, image_server) -> None:
    port = image_server.url.rsplit(":", 1)[1]
    allowed = _fetcher(tmp_path / "a", image_server, image_hosts=[f"127.0.0.*:{port}"])
    assert allowed.fetch(f"{image_server.url}/img.png").size == (64, 48)
    with pytest.raises(ImageFetchError, match="host localhost is not in OPENAUTOGLM_IMAGE_HOSTS"):
        allowed.fetch(f"{image_server.url}/redirect")  # the hop to localhost is checked too
    refused = _fetcher(tmp_path / "b", image_server, image_hosts=["*.example.com"])
    with pytest.raises(ImageFetchError, match="host 127.0.0.1 is not in OPENAUTOGLM_IMAGE_HOSTS"):
        refused.fetch(f"{image_server.url}/img.png")
    assert Settings.from_env({"OPENAUTOGLM_IMAGE_HOSTS": "a.example.com, *.b.org"}).image_hosts == \
        ["a.example.com", "*.b.org"]


def test_a_401_from_another_host_says_no_credentials_were_sent(tmp_path, image_server, caplog) -> None:
    fetcher = _fetcher(tmp_path, image_server)
    with pytest.raises(ImageFetchError, match=r"HTTP 404 \(no credentials|HTTP 404$") as refused:
        fetcher.fetch(f"{image_server.other_host}/missing")
    assert "HTTP 404" in str(refused.value)
    host = image_server.other_host.split("//")[1]
    assert f"image host {host} is not LABEL_STUDIO_URL's host" in caplog.text


def test_the_server_keeps_serving_past_a_refused_image(make_client, image_server) -> None:
    client = make_client()
    config = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
              '<Label value="cat"/></RectangleLabels></View>')
    tasks = [{"id": 1, "data": {"image": "http://169.254.169.254/latest/meta-data/"}},
             {"id": 2, "data": {"image": f"{image_server.url}/img.png"}}]
    results = client.post("/predict", json={"tasks": tasks, "label_config": config}).get_json()["results"]
    assert results[0]["result"] == [] and results[0]["score"] == 0.0
    assert results[1]["result"] and client.get("/health").status_code == 200
