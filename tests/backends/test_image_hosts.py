"""Image URLs come from task data, which anyone who can edit a project writes: link-local and
metadata addresses are never fetched, and OPENAUTOGLM_IMAGE_HOSTS narrows the rest."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading

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


def test_the_connection_goes_to_the_address_that_was_checked(tmp_path, image_server, monkeypatch) -> None:
    """DNS rebinding: a name that resolves to an allowed address when checked and to the metadata
    address when the connection resolves it again. The download connects to the checked address,
    naming the host in the Host header; the name is resolved once."""
    real, asked = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host == "rebind.test":
            asked.append(host)
            address = "127.0.0.1" if len(asked) == 1 else "169.254.169.254"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, args[0] if args else 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = image_server.url.rsplit(":", 1)[1]
    image = _fetcher(tmp_path, image_server, fetch_timeout_s=3).fetch(f"http://rebind.test:{port}/img.png")
    assert image.size[0] > 0 and asked == ["rebind.test"]
    assert image_server.requests[-1][1]["Host"] == f"rebind.test:{port}"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_a_pinned_https_connection_still_checks_the_certificate_for_the_name(tmp_path, image_server,
                                                                              monkeypatch) -> None:
    """Connected by address, TLS still sends the name (SNI) and checks the certificate against it:
    a certificate for rebind.test is accepted, the same server under another name is not."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=rebind.test", "-addext", "subjectAltName=DNS:rebind.test", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), image_server.httpd.RequestHandlerClass)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host in ("rebind.test", "other.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", args[0] if args else 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    try:
        fetcher = _fetcher(tmp_path, image_server, fetch_timeout_s=3)
        assert fetcher.fetch(f"https://rebind.test:{httpd.server_address[1]}/img.png").size[0] > 0
        with pytest.raises(ImageFetchError, match="SSLError"):
            fetcher.fetch(f"https://other.test:{httpd.server_address[1]}/img.png")
    finally:
        httpd.shutdown()


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
