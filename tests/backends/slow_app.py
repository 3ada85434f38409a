"""A gunicorn app factory for tests: the real app around a pipeline that takes SLOW_SECONDS per call
and finds SLOW_REGIONS small boxes (label: the first project label) per image."""

from __future__ import annotations

import os
import time

from openautoglm.backends.app import create_app
from openautoglm.converters import Box, Region
from tests.backends.conftest import FakePipeline


class SlowPipeline(FakePipeline):
    name = "slow"
    version = "slow@1"

    def propose(self, images, labels, synonyms=None):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "3")))
        count = int(os.environ.get("SLOW_REGIONS", "0"))
        return [[Region(labels[0], box=Box(k % 8 * 8, k // 8 % 6 * 8, k % 8 * 8 + 6, k // 8 % 6 * 8 + 6),
                        score=0.5) for k in range(count)] if labels else [] for _ in images]


def create():
    return create_app(pipeline=SlowPipeline())
