"""The `openautoglm` command: convert between formats, serve the backend."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from openautoglm.converters import formats, progress
from openautoglm.converters.types import AnnotationError


def _convert(args: argparse.Namespace) -> int:
    options = {"task": args.yolo_task, "zero_based": args.voc_zero_based or None}
    with progress.enabled():
        dataset = formats.convert(Path(args.source), args.source_format, Path(args.output), args.target_format,
                                  Path(args.images) if args.images else None, **options)
    count = sum(len(item.regions) for item in dataset.items)
    print(f"converted {len(dataset.items)} images, {count} regions: {args.output}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "gunicorn", "--bind", f"{args.host}:{args.port}",
               "--workers", str(args.workers), "--threads", str(args.threads),
               "openautoglm.backends.app:create_app()"]
    os.execv(sys.executable, command)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openautoglm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="convert annotations between formats")
    convert.add_argument("source", help="input file (COCO, Label Studio, CVAT) or directory (VOC, YOLO)")
    convert.add_argument("--from", dest="source_format", required=True, choices=sorted(formats.FORMATS))
    convert.add_argument("--to", dest="target_format", required=True, choices=sorted(formats.FORMATS))
    convert.add_argument("output", help="output file, or a new directory for VOC and YOLO")
    convert.add_argument("--images", help="image directory: sizes for YOLO/Label Studio input, copied into VOC/YOLO output")
    convert.add_argument("--yolo-task", choices=("detect", "segment", "obb"),
                         help="YOLO line kind (default: from data.yaml when reading, from the data when writing)")
    convert.add_argument("--voc-zero-based", action="store_true",
                         help="read VOC boxes as 0-based (files written by CVAT or datumaro)")
    convert.set_defaults(run=_convert)

    serve = commands.add_parser("serve", help="start the ML backend under gunicorn")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=9090)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--threads", type=int, default=4)
    serve.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except AnnotationError as error:
        print(f"openautoglm: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
