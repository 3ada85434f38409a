"""A fake pipeline and a local image server standing in for Label Studio's file serving."""

from __future__ import annotations

import io
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openautoglm.backends.app import create_app
from openautoglm.backends.settings import Settings
from openautoglm.converters import Box, Mask, Region, Shape
from openautoglm.model.inference.clicks import object_at
from openautoglm.model.scores.calibration import CURRENT, Calibration, model_version_of
from openautoglm.model.scores.scoring import ImageEvidence, ImagePrediction, region_evidence, scored_prediction

FIXTURES = "fixtures/label-studio-1.23.2-requests.jsonl"


class FakePipeline:
    """Finds one object per image: the centre half of the image, labelled with the first project
    label, score 0.8, with an elliptical mask. Records what it was asked. Implements all of
    backends.served.ServedPipeline, scored as the real pipeline scores (raw without a calibration)."""

    name = "fake"
    version = "fake@1"
    segmenter = None
    vocabulary = None
    display_threshold = 0.25
    cascade_below = None

    def __init__(self, calibration: Calibration | None = None):
        self.calls = []
        self.calibration = calibration

    @property
    def model_version(self) -> str:
        return model_version_of(self.version, self.calibration)

    def predict(self, images, labels, synonyms=None, calibration=CURRENT) -> list[ImagePrediction]:
        calibration = self.calibration if calibration == CURRENT else calibration
        return [scored_prediction(regions, ImageEvidence(region_evidence(regions, *image.size)), calibration, [])
                for image, regions in zip(images, self.propose(images, labels, synonyms))]

    def objects_at(self, image, clicks, labels, synonyms=None) -> list[Region]:
        """What the real pipeline's click finding chooses among this fake's detections."""
        (prediction,) = self.predict([image], labels, synonyms, calibration=None)
        return [r for r in (object_at(prediction.regions, click) for click in clicks) if r is not None]

    def propose(self, images, labels, synonyms=None):
        self.calls.append((len(images), list(labels), dict(synonyms or {})))
        results = []
        for image in images:
            width, height = image.size
            box = Box(width / 4, height / 4, 3 * width / 4, 3 * height / 4)
            yy, xx = np.mgrid[0:height, 0:width]
            bitmap = ((xx - width / 2) / (width / 4)) ** 2 + ((yy - height / 2) / (height / 4)) ** 2 <= 1
            results.append([Region(labels[0], Shape.MASK, box, mask=Mask.from_array(bitmap), score=0.8,
                                   source=self.version)] if labels else [])
        return results


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "green").save(buffer, "PNG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring its size, with almost no pixel data: what a bomb costs to send."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


class ImageServer:
    """Serves /img.png, /corrupt.jpg, /missing (404), /huge (50 MB declared), /redirect (to the
    other host name), /to-metadata (to the cloud metadata address), /api/token/refresh/,
    /api/projects/{id} (GET and PATCH, as Label Studio's), /api/projects/{id}/import/predictions;
    records every request's path and headers."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.project_version, self.patch_refusals = "openautoglm", 0  # /api/projects/{id} of a Label Studio
        self.png: bytes | None = None  # what image paths serve (default: a small green PNG)
        self.imported: list[tuple[str, list]] = []  # POST /api/projects/{id}/import/predictions bodies
        self.tasks: list[dict] = []  # GET /api/tasks lists these, a page at a time, with their imported predictions
        self.label_config = ""  # GET /api/projects/{id} answers it
        self.import_refusals = 0  # answer 503 to this many imports first
        self.deleted_tasks: set = set()  # imports naming these answer 400, as Label Studio does for a deleted task
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, content_type: str = "image/png", extra: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str((extra or {}).get("length", len(body))))
                for key, value in (extra or {}).items():
                    if key != "length":
                        self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                path = self.path.split("?")[0]
                if path.endswith((".png", "/data/local-files/")):
                    self._send(200, server.png or png_bytes())
                elif path.endswith("corrupt.jpg"):
                    self._send(200, b"\xff\xd8\xff\xe0 not a jpeg at all", "image/jpeg")
                elif path.endswith("huge"):
                    self._send(200, b"", extra={"length": 50 * 1024 * 1024})
                elif path.startswith("/api/projects/"):
                    project = {"model_version": server.project_version, "label_config": server.label_config}
                    self._send(200, json.dumps(project).encode(), "application/json")
                elif path == "/api/tasks":
                    self._send(200, json.dumps(server.task_page(self.path)).encode(), "application/json")
                elif path.startswith("/api/tasks/") and path.rsplit("/", 1)[1].isdigit():
                    task = int(path.rsplit("/", 1)[1])
                    held = [p for _, body in server.imported for p in body if p["task"] == task]
                    if task in server.deleted_tasks:
                        self._send(404, b"{}", "application/json")
                    else:
                        self._send(200, json.dumps({"id": task, "predictions": held}).encode(), "application/json")
                elif path.endswith("to-metadata"):
                    self._send(302, b"", extra={"Location": "http://169.254.169.254/latest/meta-data/"})
                elif path.endswith("redirect"):
                    self._send(302, b"", extra={"Location": f"{server.other_host}/img.png"})
                else:
                    self._send(404, b"not found", "text/plain")

            def do_PATCH(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append((self.path, dict(self.headers)))
                if server.patch_refusals > 0:  # as Label Studio before it has stored the predictions
                    server.patch_refusals -= 1
                    self._send(400, b'{"model_version": ["Model version doesn\'t exist"]}', "application/json")
                else:
                    server.project_version = body["model_version"]
                    self._send(200, json.dumps({"model_version": server.project_version}).encode(), "application/json")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append((self.path, dict(self.headers)))
                if self.path == "/api/token/refresh/" and body.get("refresh") == "aaa.bbb.ccc":
                    self._send(200, json.dumps({"access": "short-lived"}).encode(), "application/json")
                elif self.path.endswith("/import/predictions") and server.import_refusals > 0:
                    server.import_refusals -= 1
                    self._send(503, b"{}", "application/json")
                elif self.path.endswith("/import/predictions") and any(p["task"] in server.deleted_tasks for p in body):
                    message = f'{body[0]} contains invalid "task" field: task ID {body[0]["task"]} not found in project'
                    self._send(400, json.dumps([message]).encode(), "application/json")
                elif self.path.endswith("/import/predictions"):
                    server.imported.append((self.path, body))
                    self._send(201, json.dumps({"created": len(body)}).encode(), "application/json")
                else:
                    self._send(401, b"{}", "application/json")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.other_host = f"http://localhost:{port}"  # same server, another host name: a foreign host
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


    def task_page(self, path: str) -> dict:
        """Label Studio's task list: a page of tasks, each with the predictions imported for it."""
        from urllib.parse import parse_qs, urlsplit

        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
        chosen = self.tasks[(page - 1) * size:page * size]
        predictions = [p for _, body in self.imported for p in body]
        return {"total": len(self.tasks),
                "tasks": [{**t, "predictions": [p for p in predictions if p["task"] == t["id"]]} for t in chosen]}
    def headers_for(self, path_end: str) -> list[dict]:
        return [headers for path, headers in self.requests if path.split("?")[0].endswith(path_end)]


@pytest.fixture
def image_server():
    server = ImageServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def make_client(tmp_path: Path, image_server: ImageServer):
    def make(pipeline=None, **overrides):
        values = dict(label_studio_url=image_server.url, label_studio_api_key="legacy-key",
                      store_path=tmp_path / "reviews.sqlite3", cache_dir=tmp_path / "cache", home=tmp_path / "home")
        settings = Settings(**{**values, **overrides})
        pipeline = pipeline or FakePipeline()
        app = create_app(settings, pipeline)
        client = app.test_client()
        client.pipeline, client.app, client.settings = pipeline, app, settings
        return client

    return make


@pytest.fixture(scope="session")
def recorded(shared: Path) -> list[dict]:
    return [json.loads(line) for line in (shared / FIXTURES).read_text().splitlines() if line.strip()]
