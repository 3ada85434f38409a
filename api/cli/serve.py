"""`openautoglm serve`: the backend under gunicorn, its workers' environment and command line."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def gunicorn_command(app: str, host: str, port: int, workers: int, threads: int, timeout: int,
                     control_socket: Path | None = None) -> list[str]:
    """How the backend runs: gthread workers, so a slow prediction holds one thread while /health
    answers on another; each worker accepts only as many connections as it has threads, so queued
    requests wait in the shared listen backlog for whichever worker frees up first, instead of
    piling up behind one worker's model while another worker's model sits idle. gunicorn's control
    socket goes where asked (the server's data folder), not to the user's home; none if not asked."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--worker-class", "gthread",
            "--workers", str(workers), "--threads", str(threads), "--worker-connections", str(threads),
            "--keep-alive", "0", "--timeout", str(timeout),
            *(["--control-socket", str(control_socket)] if control_socket else ["--no-control-socket"]), app]


def serve_environment(environ: dict[str, str]) -> dict[str, str]:
    """The workers' environment: PROMETHEUS_MULTIPROC_DIR names a fresh folder (unless set) where
    every worker keeps its metrics, so /metrics reports the whole server and not whichever worker
    answered the scrape. Counts left by an earlier run would be added in, hence a new folder."""
    if environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return dict(environ)
    return {**environ, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="openautoglm-metrics-")}


def run_serve(args: argparse.Namespace) -> int:
    environ = serve_environment(os.environ)
    if args.model:
        environ["OPENAUTOGLM_MODEL"] = args.model  # read once by the app's Settings in every worker
    from openautoglm.backends.settings import Settings

    home = Settings.from_env(environ).home
    home.mkdir(parents=True, exist_ok=True)
    command = gunicorn_command("openautoglm.backends.app:create_app()", args.host, args.port, args.workers,
                               args.threads, args.timeout, control_socket=home / f"gunicorn-{args.port}.ctl")
    os.execve(sys.executable, command, environ)
    return 0  # not reached
