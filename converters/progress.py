"""Progress bars for long conversions: shown by the CLI on large inputs, silent for library callers."""

from __future__ import annotations

import contextlib
import sys
from contextvars import ContextVar
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class _Bar(tqdm):
    # no monitor thread: a conversion forks its mask work only from a process without other threads
    monitor_interval = 0

_enabled: ContextVar[bool] = ContextVar("openautoglm_progress", default=False)
LARGE = 1000  # items; smaller inputs finish too fast for a bar to help


@contextlib.contextmanager
def enabled() -> Iterator[None]:
    token = _enabled.set(True)
    try:
        yield
    finally:
        _enabled.reset(token)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    if not _enabled.get() or (total is not None and total < LARGE):
        return items
    return _Bar(items, desc=description, total=total, unit="img", file=sys.stderr, leave=False)
