"""The report page's four figures, as PNG bytes: reliability diagram, review curve, refits over
time, the queue by score. Each says so in the figure when it has nothing to show yet."""

from __future__ import annotations

import datetime
import io

import numpy as np

BINS = 10


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    return plt


def matplotlib_dates():
    import matplotlib.dates

    return matplotlib.dates


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    _pyplot().close(figure)
    return buffer.getvalue()


def _empty(axis, message: str) -> None:
    axis.text(0.5, 0.5, message, ha="center", va="center", transform=axis.transAxes, color="#555555")
    axis.set_xticks([]), axis.set_yticks([])


def _one_axis(title: str):
    figure, axis = _pyplot().subplots(figsize=(5, 3.8))
    axis.set_title(title)
    return figure, axis


def _nothing(figure, axis, message: str) -> bytes:
    _empty(axis, message)
    return _png(figure)


def reliability(pairs: dict[str, tuple[list[float], list[bool]]]) -> bytes:
    """Per kind ("regions", "tasks"): (scores, whether each was right): observed against predicted,
    in ten bins, each point's size its count."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8))
    for axis, (kind, (scores, right)) in zip(np.atleast_1d(axes), pairs.items()):
        axis.set_title(f"{kind}: score against reviews")
        if not scores:
            _empty(axis, "none reviewed yet")
            continue
        scores, right = np.asarray(scores, dtype=float), np.asarray(right, dtype=float)
        which = np.minimum((scores * BINS).astype(int), BINS - 1)
        filled = [b for b in range(BINS) if (which == b).any()]
        predicted = [scores[which == b].mean() for b in filled]
        observed = [right[which == b].mean() for b in filled]
        counts = [int((which == b).sum()) for b in filled]
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        axis.plot(predicted, observed, color="#1f77b4", marker=None)
        axis.scatter(predicted, observed, s=[20 + 180 * c / max(counts) for c in counts], color="#1f77b4",
                     label=f"reviewed ({len(scores)})")
        axis.set(xlabel="score", ylabel="share right" if kind == "regions" else "share needing no edit",
                 xlim=(0, 1), ylim=(0, 1.02))
        axis.legend(fontsize=8, loc="upper left")
    return _png(figure)


def review_curve(scores: list[float], needs_edit: list[bool], accept_above: float) -> bytes:
    """Reviewing the lowest scores first: the share of the tasks needing an edit caught against the
    share reviewed; the diagonal is a random order."""
    figure, axis = _one_axis("review curve (lowest score first)")
    wrong = np.asarray(needs_edit, dtype=bool)
    if not wrong.any():
        return _nothing(figure, axis, "no reviewed task needed an edit yet" if scores else "none reviewed yet")
    scores = np.asarray(scores, dtype=float)
    thresholds = np.unique(scores)  # tasks of one score are reviewed together: no order among ties
    reviewed = np.concatenate([[0.0], [(scores <= t).mean() for t in thresholds]])
    caught = np.concatenate([[0.0], [(wrong & (scores <= t)).sum() / wrong.sum() for t in thresholds]])
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random order")
    axis.plot(reviewed, caught, color="#1f77b4", label="by score")
    below = float((scores < accept_above).mean())
    axis.axvline(below, color="#d62728", linestyle="--", label=f"scores under {accept_above:g}")
    axis.set(xlabel="share of tasks reviewed", ylabel="share needing an edit caught", xlim=(0, 1), ylim=(0, 1.02))
    axis.legend(fontsize=8, loc="lower right")
    return _png(figure)


def refits(log: list[tuple[float, str]]) -> bytes:
    """Each refit (time, result) as a step in the running count, one colour per result."""
    figure, axis = _one_axis("refits over time")
    if not log:
        return _nothing(figure, axis, "no refit yet")
    times = [datetime.datetime.fromtimestamp(at, datetime.timezone.utc) for at, _ in log]
    axis.step(times, range(1, len(log) + 1), where="post", color="#7f7f7f")
    for result in sorted({r for _, r in log}):
        points = [(t, n) for n, (t, (_, r)) in enumerate(zip(times, log), start=1) if r == result]
        axis.scatter([t for t, _ in points], [n for _, n in points], label=result, zorder=3)
    locator = matplotlib_dates().AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(matplotlib_dates().ConciseDateFormatter(locator))
    axis.set(xlabel="time (UTC)", ylabel="refits")
    axis.legend(fontsize=8, loc="upper left")
    return _png(figure)


def queue(open_scores: list[float], accept_above: float) -> bytes:
    """The tasks nobody has reviewed, by task score, with the accept threshold."""
    figure, axis = _one_axis("open tasks by score")
    if not open_scores:
        return _nothing(figure, axis, "no open task")
    axis.hist(open_scores, bins=20, range=(0, 1), color="#1f77b4")
    axis.axvline(accept_above, color="#d62728", linestyle="--", label=f"accept at {accept_above:g}")
    axis.set(xlabel="task score", ylabel="tasks", xlim=(0, 1))
    axis.legend(fontsize=8, loc="upper left")
    return _png(figure)
