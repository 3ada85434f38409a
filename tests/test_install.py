"""Installed as a user installs it: the built wheel in a clean venv without torch, served from the
repository root (gunicorn puts the working directory first on sys.path) and from a copy of the
Docker image's /app, laid out by the Dockerfile's own COPY lines. An editable install maps whole
folders and would hide both a missing package and a source folder shadowing the installed one."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel with the `serve` extra (LiteRT, onnxruntime: no torch) in a fresh venv; its bin/."""
    folder = tmp_path_factory.mktemp("install")
    # built from a copy: setuptools keeps build/lib between builds, so a module deleted from the
    # checkout would still ship from a stale build/ folder there
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "build", "dist",
                                                                "*.egg-info",
                                                                "__pycache__", ".pytest_cache", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(folder / "dist"), str(source)], check=True, cwd=folder)
    (wheel,) = (folder / "dist").glob("openautoglm-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    bin_dir = folder / "venv" / "bin"
    subprocess.run([str(bin_dir / "pip"), "install", "-q", "--disable-pip-version-check", f"{wheel}[serve]"],
                   check=True, cwd=folder)
    return bin_dir


def _docker_layout(target: Path) -> Path:
    """What `COPY a b` lines in docker/Dockerfile put into the image's working directory."""
    text = (ROOT / "docker" / "Dockerfile").read_text()
    (workdir,) = re.findall(r"^WORKDIR (\S+)$", text, re.M)
    app = target / workdir.strip("/")
    app.mkdir(parents=True)
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, destination = line.split()
        for source in sources:
            into = app / destination if destination not in ("./", ".") else app
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, into / source)
    return app


def _serve_and_ask_health(bin_dir: Path, cwd: Path, shared: Path, home: Path) -> dict:
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAUTOGLM_", "PYTHON"))}
    env.update(OPENAUTOGLM_MODEL_DIR=str(shared / "models"), OPENAUTOGLM_OFFLINE="1", OPENAUTOGLM_HOME=str(home),
               PATH=f"{bin_dir}:{env.get('PATH', '')}")
    server = subprocess.Popen([str(bin_dir / "openautoglm"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    import json

                    return json.loads(response.read())
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, "no /health answer within 60 s"
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_the_wheel_installs_without_torch(installed: Path) -> None:
    probe = subprocess.run([str(installed / "python"), "-c", "import importlib.util as u; "
                            "print(u.find_spec('torch') is None, u.find_spec('openautoglm.backends.app') is not None)"],
                           capture_output=True, text=True, cwd="/", check=True)
    assert probe.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("where", ["repository-root", "docker-layout"])
def test_the_installed_server_answers_from(where: str, installed: Path, shared: Path, tmp_path: Path) -> None:
    cwd = ROOT if where == "repository-root" else _docker_layout(tmp_path / "image")
    health = _serve_and_ask_health(installed, cwd, shared, tmp_path / "home")
    assert health["status"] == "UP"
    assert re.fullmatch(r"yolo\+yolov8n@[0-9a-f]{12}\+calibration-[0-9a-f]{12}", health["model_version"])
