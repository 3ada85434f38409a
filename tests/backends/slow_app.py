"""A gunicorn app factory for tests: the real app around a pipeline that takes SLOW_SECONDS per call."""

from __future__ import annotations

import os
import time

from openautoglm.backends.app import create_app


class SlowPipeline:
    version = "slow@1"
    segmenter = None

    def propose(self, images, labels, synonyms=None):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "3")))
        return [[] for _ in images]


def create():
    return create_app(pipeline=SlowPipeline())
