"""`openautoglm label-studio prelabel --project N`: pre-annotate a whole project through Label
Studio's API, however large, with a progress bar; run again after a kill, it goes on with the
tasks that have no prediction yet. Label Studio is reached as the server reaches it
(LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY)."""

from __future__ import annotations

import argparse
import sys

from openautoglm.model.errors import ModelError


def add_label_studio(commands) -> None:
    group = commands.add_parser("label-studio", help="work on a Label Studio project through its API")
    actions = group.add_subparsers(dest="action", required=True)
    prelabel = actions.add_parser("prelabel", help="predict every task of a project that has no prediction of this "
                                                   "model version yet, and import the predictions")
    prelabel.add_argument("--project", required=True, help="the project's id (in its URL: /projects/<id>)")
    prelabel.add_argument("--model", help="pipeline name or .yaml file (default: OPENAUTOGLM_MODEL or yolo)")
    prelabel.add_argument("--page-size", type=int, default=100, help="tasks read and imported per request")
    prelabel.add_argument("--workers", type=int, default=1, help="processes predicting pages at once, each "
                                                                  "loading the model (or Ray actors with --engine ray)")
    prelabel.add_argument("--engine", choices=("local", "ray"), default="local",
                          help="ray: predict on a Ray cluster (RAY_ADDRESS or --ray-address; else a local Ray)")
    prelabel.add_argument("--ray-address", help="a Ray cluster to join (default: RAY_ADDRESS, else start one)")
    prelabel.set_defaults(run=run_prelabel)


def run_prelabel(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from openautoglm.backends.label_studio.client import LabelStudioClient, LabelStudioError
    from openautoglm.backends.label_studio.prelabel import prelabel_project
    from openautoglm.backends.settings import Settings
    from openautoglm.cli.prelabel_engines import open_engine

    if args.workers < 1:
        raise ModelError(f"--workers must be at least 1, not {args.workers}")
    settings = Settings.from_env()
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key, settings.fetch_timeout_s)
    if not client.writable:
        raise ModelError("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (a key that may change the project)")
    engine = open_engine(args.model, args.project, args.workers, args.engine, args.ray_address)
    bar = tqdm(desc=f"project {args.project}", unit="task", file=sys.stderr)

    def on_page(counts, total) -> None:
        bar.total = total
        bar.update(counts.skipped + counts.imported - bar.n)
        bar.set_postfix(predicted=counts.predicted, skipped=counts.skipped, unreadable=counts.failed)

    try:
        counts = prelabel_project(client, engine, args.project, args.page_size, on_page)
    except LabelStudioError as error:
        raise ModelError(str(error)) from None
    finally:
        bar.close()
        engine.close()
    print(f"project {args.project}: {counts.tasks} tasks, {counts.skipped} already predicted by "
          f"{engine.model_version}, {counts.imported} predicted and imported ({counts.failed} with an unreadable "
          "image)", file=sys.stderr)
    return 0
