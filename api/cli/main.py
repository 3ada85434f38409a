"""The `openautoglm` command: convert between formats, serve the backend."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from openautoglm.converters import formats, progress
from openautoglm.converters.types import AnnotationError
from openautoglm.model.errors import ModelError

from .label_config import add_label_config
from .label_studio import add_label_studio
from .serve import run_serve

SAVE_CONF_HELP = ("with --to/--format yolo: each scored region's confidence after its coordinates, as "
                  "ultralytics' save_conf writes it (such labels are for reading back, not for training)")


def _convert(args: argparse.Namespace) -> int:
    from openautoglm.converters.parallel import using_workers
    from openautoglm.converters.skipping import skipping_invalid

    options = {"task": args.yolo_task, "zero_based": args.voc_zero_based or None,
               "save_conf": args.yolo_save_conf or None}
    with progress.enabled(), using_workers(args.workers), \
            skipping_invalid() if args.skip_invalid else contextlib.nullcontext([]) as skipped:
        dataset = formats.convert(Path(args.source), args.source_format, Path(args.output), args.target_format,
                                  Path(args.images) if args.images else None, **options)
    if skipped:
        print(f"openautoglm: warning: skipped {len(skipped)} invalid element(s):", file=sys.stderr)
        for line in skipped[:20]:
            print(f"  {line}", file=sys.stderr)
        if len(skipped) > 20:
            print(f"  ... and {len(skipped) - 20} more", file=sys.stderr)
    count = sum(len(item.regions) for item in dataset.items)
    print(f"converted {len(dataset.items)} images, {count} regions: {args.output}", file=sys.stderr)
    return 0


def _models(args: argparse.Namespace) -> int:
    from openautoglm.model.inference import registry
    from openautoglm.model.inference.pipeline import builtin_names
    from openautoglm.model.inference.settings import ModelSettings

    settings = ModelSettings.from_env()
    print(f"model directory: {settings.model_dir or '(OPENAUTOGLM_MODEL_DIR not set)'}")
    rows = [(row["name"], row["family"], row["licence"],
             "yes" if row["present"] else ("download" if row["remote"] else "missing"), row["verified"])
            for row in registry.describe(settings)]
    print(table(("model", "family", "licence", "weights here", "verified with"), rows))
    print(f"pipelines: {', '.join(builtin_names())}")
    return 0


def table(header: tuple[str, ...], rows: list[tuple]) -> str:
    """Columns as wide as their longest cell, two spaces apart, so no two cells ever touch."""
    cells = [tuple(map(str, header))] + [tuple(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip()
                     for row in cells)


def format_name(value: str) -> str:
    """A format name as the converters know it; `label-studio` and `label_studio` alike."""
    try:
        return formats.get(value).name
    except AnnotationError:
        raise argparse.ArgumentTypeError(f"unknown format {value!r}; choose one of {formats.spellings()}") from None


def _predict(args: argparse.Namespace) -> int:
    from openautoglm.autolabel import LabelerArguments
    from openautoglm.cli.predict import run, write_failures
    from openautoglm.model.inference.settings import ModelSettings

    formats.writable(args.format)
    paths = [p for arg in args.images for p in (sorted(Path(arg).iterdir()) if Path(arg).is_dir() else [Path(arg)])]
    output = Path(args.output)
    labels, synonyms, config = tuple(args.labels or ()), {}, None
    if args.label_config:
        config, labels, synonyms = _project_labels(Path(args.label_config), labels)
    arguments = LabelerArguments(args.model, labels, args.device, args.batch_size,
                                 ModelSettings.from_env(), synonyms)  # read once here; workers and Ray actors get it
    with progress.enabled():
        survey = run(arguments, paths, output, args.format, args.force, args.workers, args.engine, args.ray_address,
                     {"image_url_root": args.image_url_root, "label_config": config,
                      "save_conf": args.yolo_save_conf or None})
    failed = survey.failures
    for failure in failed:
        print(f"openautoglm: skipped {failure['file_name']}: {failure['error']}", file=sys.stderr)
    print(f"{len(survey.lines)} images, {survey.regions} regions, {len(failed)} unreadable: {args.output}",
          file=sys.stderr)
    if failed:
        print(f"failures listed in {write_failures(output, failed)}", file=sys.stderr)
    # a script must notice that images are missing from the output, unless it said it does not care
    return 1 if failed and not args.allow_failures else 0


def _project_labels(path: Path, labels: tuple[str, ...]) -> tuple[str, tuple[str, ...], dict[str, list[str]]]:
    """A Label Studio labelling config: its text, its labels (unless given) and their other names."""
    from openautoglm.converters.label_studio_config import LabelConfigError, parse

    try:
        text = path.read_text(encoding="utf-8")
        targets = parse(text)
    except (OSError, UnicodeDecodeError, LabelConfigError) as error:
        raise AnnotationError(f"{path}: not a readable Label Studio labelling config: {error}") from None
    if not targets:
        raise AnnotationError(f"{path}: no RectangleLabels, PolygonLabels, BrushLabels or KeyPointLabels on an Image")
    synonyms = {label: others for target in targets for label, others in target.labels.items() if others}
    return text, labels or tuple(sorted({label for target in targets for label in target.labels})), synonyms


def _calibrate(args: argparse.Namespace) -> int:
    from openautoglm.cli.calibrate import run_calibrate

    return run_calibrate(args)


def _eval(args: argparse.Namespace) -> int:
    from openautoglm.cli.calibrate import run_eval

    return run_eval(args)


def _report(args: argparse.Namespace) -> int:
    from openautoglm.cli.report import run_report

    return run_report(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openautoglm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_convert, _add_models, _add_predict, _add_fitting, _add_report, _add_serve, add_label_studio,
                add_label_config):
        add(commands)
    return parser


def _add_convert(commands) -> None:
    convert = commands.add_parser("convert", help="convert annotations between formats")
    convert.add_argument("source", help="input file (COCO, Label Studio, CVAT) or directory (VOC, YOLO)")
    convert.add_argument("--from", dest="source_format", required=True, type=format_name, metavar="FORMAT",
                         help=f"one of {formats.spellings()}")
    convert.add_argument("--to", dest="target_format", required=True, type=format_name, metavar="FORMAT",
                         help=f"one of {formats.spellings()}")
    convert.add_argument("output", help="output file, or a new directory for VOC and YOLO")
    convert.add_argument("--images",
                         help="image directory: sizes for YOLO/Label Studio input, copied into VOC/YOLO output")
    convert.add_argument("--yolo-task", choices=("detect", "segment", "obb"),
                         help="YOLO line kind (default: from data.yaml when reading, from the data when writing)")
    convert.add_argument("--workers", type=int, default=None,
                         help="processes for the mask work of a large dataset (default: one per core)")
    convert.add_argument("--skip-invalid", action="store_true",
                         help="leave out an element that cannot be read (listed as a warning) instead of failing")
    convert.add_argument("--voc-zero-based", action="store_true",
                         help="read VOC boxes as 0-based (files written by CVAT or datumaro)")
    convert.add_argument("--yolo-save-conf", action="store_true", help=SAVE_CONF_HELP)
    convert.set_defaults(run=_convert)


def _add_models(commands) -> None:
    models = commands.add_parser("models", help="list known models, their licences and which weights are here")
    models.set_defaults(run=_models)


def _add_predict(commands) -> None:
    predict = commands.add_parser("predict", help="pre-annotate images or folders and save them in a format")
    predict.add_argument("images", nargs="+", help="image files or folders")
    predict.add_argument("--model", default="yolo", help="pipeline name or a pipeline .yaml file")
    predict.add_argument("--labels", nargs="*", help="project labels (default: every class the model knows)")
    predict.add_argument("--format", default="coco", type=format_name, metavar="FORMAT",
                         help=f"one of {formats.spellings()} (default: coco)")
    predict.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    predict.add_argument("--batch-size", type=int, default=8)
    predict.add_argument("-o", "--output", required=True)
    predict.add_argument("--workers", type=int, default=1,
                         help="processes, each with its own copy of the model (default 1; on CPU up to one per core; "
                              "with --engine ray: actors, default one per CPU or GPU)")
    predict.add_argument("--engine", choices=("local", "ray"), default="local",
                         help="ray: actors on a Ray cluster (RAY_ADDRESS or --ray-address; else a local Ray)")
    predict.add_argument("--ray-address", help="the Ray cluster to join (default: RAY_ADDRESS, else start one)")
    predict.add_argument("--force", action="store_true",
                         help="predict every image again (default: resume an interrupted run, skip images already "
                              "in the output)")
    predict.add_argument("--label-config", metavar="FILE",
                         help="a Label Studio labelling config: predict its labels, name the results after its "
                              "controls (with --format label-studio)")
    predict.add_argument("--image-url-root", metavar="URL",
                         help="with --format label-studio: task image URLs are this root plus the file name, e.g. "
                              "'/data/local-files/?d=images/' or 'https://bucket.example/images/'")
    predict.add_argument("--yolo-save-conf", action="store_true", help=SAVE_CONF_HELP)
    predict.add_argument("--allow-failures", action="store_true",
                         help="exit 0 even when some images could not be read (they are listed either way)")
    predict.set_defaults(run=_predict)


def _add_fitting(commands) -> None:
    for name, run, about in (("calibrate", _calibrate, "fit a pipeline's calibration on images with COCO ground truth"),
                             ("eval", _eval, "measure raw and calibrated scores against COCO ground truth")):
        command = commands.add_parser(name, help=about)
        command.add_argument("--model", default="yolo", help="pipeline name or a pipeline .yaml file")
        command.add_argument("--images", help="folder of the images the truth file names")
        command.add_argument("--truth", help="COCO instances JSON")
        command.add_argument("--labels", nargs="*", help="the project's labels (default: every label)")
        command.add_argument("--device", help="cpu, cuda, cuda:1 ...")
        command.set_defaults(run=run)
    commands.choices["calibrate"].add_argument("--out", required=True, help="calibration file to write")
    commands.choices["calibrate"].add_argument("--store", help="fit from the reviews in this review store (SQLite "
                                               "file) instead of --images and --truth")
    commands.choices["calibrate"].add_argument("--prior", help="with --store: the calibration the team started from, "
                                               "weighing as much as 50 reviewed tasks")
    commands.choices["calibrate"].add_argument("--project", help="with --store: only this Label Studio project's "
                                               "reviews (its id), as the server refits each project")
    commands.choices["eval"].add_argument("--calibration", help="also measure this calibration file on the images")
    commands.choices["eval"].add_argument("--folds", type=int, default=2, help="cross-validation folds (default 2)")
    commands.choices["eval"].add_argument("--out", required=True, help="folder for report.json, report.md, PNGs")


def _add_report(commands) -> None:
    report = commands.add_parser("report", help="how the scores held up against the reviews in a review store")
    report.add_argument("--store", required=True, help="review store (SQLite file; the server's OPENAUTOGLM_STORE)")
    report.add_argument("--accept-above", type=float, help="also the measured error of tasks scored at least this")
    report.add_argument("--project", help="only this Label Studio project's reviews (its id)")
    report.add_argument("--html", metavar="FILE", help="also write the report page (figures inline) to FILE")
    report.set_defaults(run=_report)


def _add_serve(commands) -> None:
    serve = commands.add_parser("serve", help="start the ML backend under gunicorn")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=9090)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--threads", type=int, default=4)
    serve.add_argument("--model", help="pipeline name or .yaml file (default: OPENAUTOGLM_MODEL or yolo)")
    serve.add_argument("--timeout", type=int, default=120, help="seconds before gunicorn restarts a stuck worker")
    serve.set_defaults(run=run_serve)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (AnnotationError, ModelError) as error:
        print(f"openautoglm: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an output folder read-only, a path under a file, a disk full: one line
        where = f"{error.filename}: " if error.filename else ""
        print(f"openautoglm: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as error:
        print(f"openautoglm: error: an input is not text (UTF-8): {error.reason} at byte {error.start}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("openautoglm: interrupted", file=sys.stderr)
        return 130

