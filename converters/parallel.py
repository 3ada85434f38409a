"""Per-image work of the mask-heavy conversions spread over processes: decoding, tracing and
encoding masks is pure CPU work per image, so a process pool over images (order kept) uses every
core. Only where there are enough masks to pay for the pool's start, and only from a process
with no other thread running: the processes are forked (a fresh interpreter would import the
caller's main script again, which breaks a script without a `__main__` guard), and forking while
another thread holds a lock is not safe. Otherwise, or with one worker, the work runs in this
process. At most a few chunks per process are in flight, so memory stays bounded.

How many processes: `convert --workers N`, or OPENAUTOGLM_CONVERT_WORKERS, else one per core.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

MIN_MASKS = 500  # fewer masks than this: the pool costs more to start than it saves
CHUNK = 16  # images per task sent to a process
AHEAD = 4  # chunks in flight per process

T = TypeVar("T")
R = TypeVar("R")
_workers: ContextVar[int | None] = ContextVar("openautoglm_convert_workers", default=None)


def workers() -> int:
    chosen = _workers.get()
    if chosen is None:
        value = os.environ.get("OPENAUTOGLM_CONVERT_WORKERS", "").strip()
        chosen = int(value) if value.isdigit() and int(value) > 0 else os.cpu_count() or 1
    return max(1, chosen)


@contextlib.contextmanager
def using_workers(count: int | None) -> Iterator[None]:
    """Within: conversions use `count` processes (None: the default)."""
    token = _workers.set(count)
    try:
        yield
    finally:
        _workers.reset(token)


def ordered_map(function: Callable[[int, T], R], items: Iterable[T], masks: int) -> Iterator[R]:
    """`function(index, item)` for each item, in order; over forked processes when `masks` (how
    many masks the work decodes or encodes) makes that pay and `items` is a sequence. The
    processes read the function and the items from their copy of this process's memory, so only
    index ranges go to them and only results come back."""
    count = workers()
    if count <= 1 or masks < MIN_MASKS or not isinstance(items, Sequence) or not _forking_is_safe():
        yield from itertools.starmap(function, enumerate(items))
        return
    global _job
    _job = (function, items)
    try:
        with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) as pool:
            pending: deque = deque()
            for start in range(0, len(items), CHUNK):
                pending.append(pool.submit(_apply, start, min(start + CHUNK, len(items))))
                if len(pending) >= count * AHEAD:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
    finally:
        _job = None


_job: tuple[Callable, Sequence] | None = None  # what the forked processes work on


def _forking_is_safe() -> bool:
    """Fork exists here, and no other thread runs (one might hold a lock the child would inherit held)."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def _apply(start: int, stop: int) -> list:
    function, items = _job
    return [function(index, items[index]) for index in range(start, stop)]


def mask_count(items: Iterable) -> int:
    """How many masks a dataset's items hold (what decides whether a pool pays)."""
    masks = [region.mask for item in items for region in item.regions]
    return len(masks) - masks.count(None)
