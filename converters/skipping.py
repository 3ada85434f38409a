"""`--skip-invalid`: one bad element in a large export is skipped alone and listed, instead of
failing the whole read. Readers wrap each element's parsing in `element(where)`; outside
`skipping_invalid()` an error there fails the read, located as before."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator

from .types import AnnotationError

_skipped: ContextVar[list[str] | None] = ContextVar("openautoglm_skipped", default=None)
_where: ContextVar[tuple[str, ...]] = ContextVar("openautoglm_where", default=())


@contextlib.contextmanager
def skipping_invalid() -> Iterator[list[str]]:
    """Within: readers leave out the elements they cannot read; the list names each, and why."""
    token = _skipped.set([])
    try:
        yield _skipped.get()
    finally:
        _skipped.reset(token)


@contextlib.contextmanager
def element(where: str) -> Iterator[None]:
    """Around one element: an AnnotationError in it fails the read (located at `where`), or, while
    skipping, is listed with every enclosing element's location and leaves the element out."""
    token = _where.set(_where.get() + (where,))
    try:
        yield
    except AnnotationError as error:
        skipped = _skipped.get()
        if skipped is None:
            raise error.at(where) from None
        skipped.append(f"{': '.join(_where.get())}: {error}")
    finally:
        _where.reset(token)


def skipping() -> bool:
    """Whether the reader runs under `skipping_invalid()` (a conversion process is told so)."""
    return _skipped.get() is not None


def note(skipped: list[str]) -> None:
    """Elements a conversion process skipped, listed with this process's own."""
    listed = _skipped.get()
    if listed is not None:
        listed.extend(skipped)
