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
    prelabel.set_defaults(run=run_prelabel)


def run_prelabel(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from openautoglm.backends.label_studio.client import LabelStudioClient, LabelStudioError
    from openautoglm.backends.label_studio.images import ImageFetcher
    from openautoglm.backends.label_studio.predictor import Predictor
    from openautoglm.backends.label_studio.prelabel import prelabel_project
    from openautoglm.backends.settings import Settings
    from openautoglm.model.inference.pipeline import Pipeline

    settings = Settings.from_env()
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key, settings.fetch_timeout_s)
    if not client.writable:
        raise ModelError("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (a key that may change the project)")
    pipeline = Pipeline.load(args.model or settings.model, settings=settings.models)
    predictor = Predictor(pipeline, ImageFetcher(settings, client), settings.batch_size, settings.synonyms)
    bar = tqdm(desc=f"project {args.project}", unit="task", file=sys.stderr)

    def on_page(counts, total) -> None:
        bar.total = total
        bar.update(counts.tasks - bar.n)
        bar.set_postfix(predicted=counts.predicted, skipped=counts.skipped, unreadable=counts.failed)

    try:
        counts = prelabel_project(client, predictor, args.project, args.page_size, on_page)
    except LabelStudioError as error:
        raise ModelError(str(error)) from None
    finally:
        bar.close()
    print(f"project {args.project}: {counts.tasks} tasks, {counts.skipped} already predicted by "
          f"{pipeline.model_version}, {counts.imported} predicted and imported ({counts.failed} with an unreadable "
          "image)", file=sys.stderr)
    return 0
