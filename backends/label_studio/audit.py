"""Routing with OPENAUTOGLM_ACCEPT_ABOVE: a team accepts the tasks scored at or above P in bulk
(Label Studio: filter prediction score >= P, then "Create Annotations From Predictions"). A random
audit share of those tasks (OPENAUTOGLM_AUDIT_SHARE, 5 % by default) is shown just below P instead,
so people review them, and their reviews measure the error of what is accepted. Which tasks are
audited depends on the task id only: every worker and every re-prediction agrees."""

from __future__ import annotations

import hashlib
import math


def is_audited(task_id: object, share: float) -> bool:
    digest = hashlib.sha256(f"openautoglm-audit:{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def route(score: float, task_id: object, accept_above: float | None, audit_share: float) -> tuple[float, bool]:
    """(the score Label Studio is shown, whether the task is in the audit sample)."""
    if accept_above is None or score < accept_above or task_id is None or not is_audited(task_id, audit_share):
        return score, False
    return math.nextafter(accept_above, 0.0), True
