"""The HTTP server's app factory. For now it answers `/health`; the Label Studio and CVAT
protocol endpoints mount here as they land."""

from __future__ import annotations

from flask import Flask, jsonify

from openautoglm import __version__


def create_app() -> Flask:
    app = Flask("openautoglm")

    @app.get("/health")
    def health():
        return jsonify(status="UP", model_class="openautoglm", version=__version__)

    return app
