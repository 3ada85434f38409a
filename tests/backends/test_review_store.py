"""The review store is opened by every gunicorn worker at once when the server starts."""

from __future__ import annotations

from multiprocessing import get_context
from pathlib import Path

from openautoglm.model.reviews.store import ReviewStore


def _open_store(path: str) -> str | None:
    try:
        ReviewStore(Path(path)).save_predictions("v1", [])
        return None
    except Exception as error:  # noqa: BLE001 - the test reports whatever a worker would have died of
        return repr(error)


def test_workers_opening_a_new_store_together_all_succeed(tmp_path: Path) -> None:
    """Before the retry, about 1 start in 8 lost a worker to "database is locked" (and gunicorn
    then stops the whole server: "Worker failed to boot")."""
    with get_context("fork").Pool(4) as pool:
        for attempt in range(24):
            path = str(tmp_path / f"store-{attempt}.sqlite3")
            failures = [error for error in pool.map(_open_store, [path] * 4) if error]
            assert not failures, failures
