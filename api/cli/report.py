"""`openautoglm report --store`: how the scores held up against what reviewers did: reviewed tasks,
edit rate by score band, calibration error on the latest reviews (drift), and the measured error of
the tasks a team would accept above a score, with a 95 % interval."""

from __future__ import annotations

from pathlib import Path

from openautoglm.model.reviews.summary import summary


def run_report(args) -> int:
    from openautoglm.model.reviews.store import open_store

    store = open_store(args.store)
    report = summary(store.reviewed_tasks(project=args.project), args.accept_above)
    where = "" if args.project is None else f" in project {args.project}"
    print(f"reviewed tasks{where}: {report['reviewed_tasks']} ({report['with_task_score']} with a stored task score)")
    print("task score band  tasks  needed an edit")
    for band in report["bands"]:
        rate = "-" if band["edit_rate"] is None else f"{band['edit_rate']:.0%}"
        print(f"{band['band']:<15}  {band['tasks']:>5}  {rate:>14}")
    if report["latest"]:
        print(f"latest {report['latest']} tasks: region ECE {report['latest_region_ece']:.3f}, "
              f"task ECE {report['latest_task_ece']:.3f} (drift: compare with the calibration's own figures)")
    if "audit" in report:
        audit = report["audit"]
        low, high = audit["error_interval_95"]
        print(f"audit sample (tasks above OPENAUTOGLM_ACCEPT_ABOVE held back for review): {audit['tasks']} reviewed, "
              f"needed an edit {audit['measured_error']:.1%} (95 % interval {low:.1%}-{high:.1%}): the error of "
              "what is accepted unreviewed")
    if "accept_above" in report:
        accept = report["accept_above"]
        if accept["tasks"]:
            low, high = accept["error_interval_95"]
            print(f"tasks scored >= {accept['threshold']}: {accept['tasks']} reviewed, needed an edit "
                  f"{accept['measured_error']:.1%} (95 % interval {low:.1%}-{high:.1%})")
        else:
            print(f"tasks scored >= {accept['threshold']}: none reviewed yet, so no measured error")
    if args.html:
        from openautoglm.converters.files import atomic_file
        from openautoglm.model.reviews.report_page import report_html

        with atomic_file(Path(args.html)) as handle:
            handle.write(report_html(store, args.project, args.accept_above))
        print(f"report page: {args.html}")
    return 0
