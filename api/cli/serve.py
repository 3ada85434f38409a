"""`openautoglm serve`: the backend under gunicorn, its workers' environment and command line."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
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
            "--keep-alive", "0", "--timeout", str(timeout), "--config", "python:openautoglm.cli.gunicorn_hooks",
            *(["--control-socket", str(control_socket)] if control_socket else ["--no-control-socket"]), app]


def serve_environment(environ: dict[str, str], home: Path, port: int) -> dict[str, str]:
    """The workers' environment: PROMETHEUS_MULTIPROC_DIR names a folder (unless set) where every
    worker keeps its metrics, so /metrics reports the whole server and not whichever worker answered
    the scrape: `<home>/metrics/<port>`, emptied here (counts a killed run left would be added in)
    and removed on a clean shutdown (gunicorn_hooks.on_exit)."""
    if environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return dict(environ)
    folder = Path(home) / "metrics" / str(port)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return {**environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "OPENAUTOGLM_OWNED_METRICS_DIR": str(folder)}


def open_access_warning(host: str, environ: dict[str, str]) -> str | None:
    """What to tell whoever starts a server that anyone on the network can use."""
    if host in ("127.0.0.1", "localhost", "::1") or (environ.get("BASIC_AUTH_USER") and environ.get("BASIC_AUTH_PASS")):
        return None
    return (f"openautoglm: listening on {host} without authentication: anyone who reaches this port can run "
            "predictions and send reviews. Set BASIC_AUTH_USER and BASIC_AUTH_PASS (Label Studio: the model's "
            "'Use basic auth'), or --host 127.0.0.1 behind your own proxy.")


def run_serve(args: argparse.Namespace) -> int:
    from openautoglm.backends.settings import Settings

    home = Settings.from_env(os.environ).home
    home.mkdir(parents=True, exist_ok=True)
    environ = serve_environment(os.environ, home, args.port)
    if args.model:
        environ["OPENAUTOGLM_MODEL"] = args.model  # read once by the app's Settings in every worker
    warning = open_access_warning(args.host, environ)
    if warning:
        print(warning, file=sys.stderr)
    command = gunicorn_command("openautoglm.backends.app:create_app()", args.host, args.port, args.workers,
                               args.threads, args.timeout, control_socket=home / f"gunicorn-{args.port}.ctl")
    os.execve(sys.executable, command, environ)
    return 0  # not reached
