"""The review loop a server worker runs in the background: webhook events journalled and matched
(`ReviewWorker`), the calibration refitted after N new reviews or on Start training (`Refitter`),
and the open queue re-scored in Label Studio after each refit (`QueueRescorer`). Built and started
by `backends.app.create_app`; without a served calibration (OPENAUTOGLM_CALIBRATION pins one)
reviews are still stored, and nothing is refitted."""

from __future__ import annotations

from dataclasses import dataclass

from openautoglm.model.reviews.store import ReviewStore

from .refitter import Refitter
from .rescore import QueueRescorer
from .review_events import ReviewWorker


@dataclass
class ReviewLoop:
    store: ReviewStore
    worker: ReviewWorker
    refitter: Refitter | None = None
    rescorer: QueueRescorer | None = None

    def submit(self, event: dict) -> None:
        """Journal a webhook event (durable when this returns); matched in the background."""
        self.worker.submit(event)
