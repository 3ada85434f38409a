"""gunicorn server hooks for `openautoglm serve` (loaded with `--config python:openautoglm.cli.gunicorn_hooks`):
on a clean shutdown the workers' Prometheus files go with the server."""

from __future__ import annotations

import os
import shutil


def on_exit(server) -> None:
    owned = os.environ.get("OPENAUTOGLM_OWNED_METRICS_DIR")
    if owned:
        shutil.rmtree(owned, ignore_errors=True)
