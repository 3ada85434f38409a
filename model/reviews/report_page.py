"""The report page an annotation team reads (`GET /report`, `openautoglm report --html`): how well
the scores held against the reviews, what share of tasks the threshold accepts and how wrong those
were measured to be, the refits, and the queue by score. One HTML file, no external assets (the
figures are inline PNGs), so it opens offline and can be mailed."""

from __future__ import annotations

import base64
import datetime
import html

from openautoglm.model.reviews import report_figures
from openautoglm.model.reviews.summary import summary
from openautoglm.model.scores.evaluation import task_needs_edit

DEFAULT_ACCEPT_ABOVE = 0.95
_STYLE = """body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}.figures img{margin:6px;border:1px solid #eee}
.key{font-size:20px;font-weight:bold}"""


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ece(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN: nothing of that kind reviewed


def _interval(measured: dict) -> str:
    low, high = measured["error_interval_95"]  # summary's Wilson interval
    return f"{low:.1%}–{high:.1%}" if measured["tasks"] else "no tasks"


def _figure(png: bytes, title: str) -> str:
    return f'<img alt="{html.escape(title)}" title="{html.escape(title)}" ' \
           f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def report_html(store, project: object = None, accept_above: float | None = None) -> str:
    """The page for one Label Studio project (None: every review in the store)."""
    threshold = DEFAULT_ACCEPT_ABOVE if accept_above is None else accept_above
    tasks = store.reviewed_tasks(project=project)
    report = summary(tasks, threshold)
    scored = [t for t in tasks if t["task_score"] is not None]
    needs_edit = [task_needs_edit(t["missed"], t["correct"]) for t in scored]
    open_scores = store.open_task_scores(project)
    log = store.calibrations.refit_log(project)
    where = "every project" if project is None else f"project {html.escape(str(project))}"
    accepted = report["accept_above"]
    open_accepted = sum(s >= threshold for s in open_scores)
    lines = [f"<h1>Review report: {where}</h1>",
             f"<p>{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. A task is accepted when its "
             f"score is at least <b>{threshold:g}</b>; it needs an edit when a reviewer moved, removed or added "
             "an object.</p>", "<ul>",
             f"<li><span class='key'>{len(open_scores)}</span> tasks open, of which <b>{open_accepted}</b> "
             f"({_percent(open_accepted / len(open_scores) if open_scores else None)}) score at least "
             f"{threshold:g} and would be accepted unreviewed.</li>",
             f"<li><span class='key'>{report['reviewed_tasks']}</span> tasks reviewed.</li>"]
    if accepted["tasks"]:
        lines.append(f"<li>Reviewed tasks scored at least {threshold:g}: <b>{accepted['tasks']}</b> "
                     f"({_percent(accepted['share'])} of the reviewed); needed an edit "
                     f"<b>{_percent(accepted['measured_error'])}</b> (95 % interval "
                     f"{_interval(accepted)}): the measured error of what is accepted.</li>")
    else:
        lines.append(f"<li>No reviewed task scored at least {threshold:g} yet: the error of accepted tasks is "
                     "not measured.</li>")
    if "audit" in report:
        audit = report["audit"]
        lines.append(f"<li>Audit sample (accepted tasks held back for review): {audit['tasks']} reviewed, needed an "
                     f"edit {_percent(audit['measured_error'])} (95 % interval "
                     f"{_interval(audit)}).</li>")
    if report["latest"]:
        lines.append(f"<li>Calibration error on the latest {report['latest']} reviews: regions "
                     f"{_ece(report['latest_region_ece'])}, tasks {_ece(report['latest_task_ece'])} (ECE).</li>")
    done = sum(1 for _, result in log if result == "done")
    lines += [f"<li>Refits: {done} done, {len(log) - done} not.</li>", "</ul>", "<div class='figures'>",
              _figure(report_figures.reliability({
                  "regions": ([s for t in tasks for s in t["shown_scores"]], [c for t in tasks for c in t["correct"]]),
                  "tasks": ([t["task_score"] for t in scored], [not e for e in needs_edit])}), "reliability diagram"),
              _figure(report_figures.review_curve([t["task_score"] for t in scored], needs_edit, threshold),
                      "review curve"),
              _figure(report_figures.refits(log), "refits over time"),
              _figure(report_figures.queue(open_scores, threshold), "open tasks by score"), "</div>",
              "<h2>Reviewed tasks by score</h2>", "<table><tr><th>task score</th><th>tasks</th>"
              "<th>needed an edit</th></tr>"]
    lines += [f"<tr><td>{band['band']}</td><td>{band['tasks']}</td><td>{_percent(band['edit_rate'])}</td></tr>"
              for band in report["bands"]]
    lines.append("</table>")
    body = "\n".join(lines)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>openautoglm review report"
            f"</title><style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")
