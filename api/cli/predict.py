"""`openautoglm predict`: every batch's results go to a journal beside the output as they come
(`<output>.partial.jsonl`, one JSON line per image, flushed to disk), so an interrupted run loses
at most the batch in flight and the next run with the same output resumes where it stopped. The
output itself is written once, at the end, atomically, in any format `convert` writes.

Images already in the output are skipped unless `--force`: a second run over a folder that grew
predicts only the new images. Images are identified by file name, as every output format does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from openautoglm.autolabel import AutoLabeler, LabelerArguments
from openautoglm.converters import AnnotatedImage, AnnotationError, Category, Dataset, ImageRecord, coco, load, save
from openautoglm.converters.files import atomic_file
from openautoglm.converters.progress import track

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, output: Path):
        self.path = Path(f"{output}.partial.jsonl")

    def entries(self) -> Iterator[dict]:
        """The journal's lines; a last line cut short by a kill is left out (its batch is redone)."""
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    if handle.readline():  # not the last line: the journal is damaged, not just cut short
                        raise AnnotationError(f"line {number} is not JSON; delete the file or use --force",
                                              str(self.path)) from None
                    log.info("%s: the last line was cut short; its image is predicted again", self.path)

    def done(self) -> set[str]:
        return {entry["file"] for entry in self.entries() if "error" not in entry}

    def append(self, entries: list[dict]) -> None:
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries))
            handle.flush()
            os.fsync(handle.fileno())

    @staticmethod
    def entry(path: Path, item: AnnotatedImage | None, error: str | None) -> dict:
        if error is not None:
            return {"file": path.name, "path": str(path), "error": error}
        return {"file": path.name, "path": str(path), "coco": coco.dump(Dataset(items=[item]))}

    def survey(self) -> "Survey":
        """Which entry stands for each image (a name's latest success), and the failures of images
        that never succeeded; one pass, holding line numbers and counts, not the predictions."""
        latest: dict[str, tuple[int, int]] = {}  # name -> (line, regions)
        failures: dict[str, dict] = {}
        labels: dict[str, None] = {}
        for line, entry in enumerate(self.entries()):
            if "error" in entry:
                failures[entry["file"]] = {"file_name": entry["path"], "error": entry["error"]}
                continue
            latest[entry["file"]] = (line, len(entry["coco"].get("annotations", [])))
            labels.update(dict.fromkeys(c["name"] for c in entry["coco"].get("categories", [])))
            failures.pop(entry["file"], None)
        return Survey({line for line, _ in latest.values()}, sum(count for _, count in latest.values()),
                      [f for name, f in failures.items() if name not in latest], list(labels))

    def dataset(self, survey: "Survey") -> Dataset:
        """Every predicted image once, numbered in journal order, read from the journal each time a
        writer goes over them: memory stays flat in the number of images."""
        return Dataset([Category(name) for name in survey.labels], JournalItems(self, survey.lines))


@dataclass
class Survey:
    lines: set[int]  # the journal lines that stand for the predicted images
    regions: int
    failures: list[dict]
    labels: list[str]  # in order of first use


class JournalItems:
    """A dataset's items as a re-readable view of the journal (`Dataset.items` is iterated, never indexed)."""

    def __init__(self, journal: Journal, lines: set[int]):
        self.journal, self.lines = journal, lines

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[AnnotatedImage]:
        number = 0
        for line, entry in enumerate(self.journal.entries()):
            if line in self.lines:
                number += 1
                (item,) = coco.parse(entry["coco"]).items
                regions = [dataclasses.replace(region, id=None) for region in item.regions]  # numbered on writing
                yield AnnotatedImage(ImageRecord(number, item.image.file_name, item.image.width, item.image.height,
                                                 item.image.attributes),
                                     regions, item.score)


def run(arguments: LabelerArguments, paths: list[Path], output: Path, output_format: str, force: bool = False,
        workers: int = 1, engine: str = "local", ray_address: str | None = None,
        write_options: dict | None = None) -> Survey:
    """Predict `paths` into `output`: in this process, in `workers` processes, or on Ray actors,
    each with the AutoLabeler `arguments` describe; `write_options` go to the output format's writer."""
    check_names(paths)
    journal = Journal(output)
    if force:
        journal.path.unlink(missing_ok=True)
    elif not journal.path.exists() and output.exists():
        folders = {p.parent for p in paths}
        _seed_from_output(journal, output, output_format, folders.pop() if len(folders) == 1 else None)
    done = journal.done()
    todo = [p for p in paths if p.name not in done]
    if done:
        print(f"openautoglm: resuming: {len(paths) - len(todo)} of {len(paths)} images already predicted "
              f"({journal.path if journal.path.exists() else output}); --force starts over", file=sys.stderr)
    size = arguments.batch_size
    with contextlib.ExitStack() as stack:
        if engine == "ray":
            from openautoglm.cli import ray_engine

            entries = ray_engine.entries(arguments, todo, ray_address, workers if workers > 1 else None)
        elif workers > 1:
            pool = stack.enter_context(_pool(workers, arguments))
            batches = pool.map(_predict_batch, [todo[i:i + size] for i in range(0, len(todo), size)])
            entries = (Journal.entry(*result) for batch in batches for result in batch)
        else:
            entries = (Journal.entry(*result) for result in AutoLabeler(*arguments).stream(todo))
        _predict_into(journal, entries, len(todo), size)
    survey = journal.survey()
    _replace(output, lambda: save(journal.dataset(survey), output, output_format, **(write_options or {})))
    journal.path.unlink(missing_ok=True)
    return survey


def check_names(paths: list[Path]) -> None:
    """Output formats (and resuming) know an image by its file name: two inputs with one name would
    lose one of them silently."""
    first: dict[str, Path] = {}
    for path in paths:
        if path.name in first and first[path.name] != path:
            raise AnnotationError(f"two input images are named {path.name} ({first[path.name]} and {path}); "
                                  "outputs identify images by file name: predict them into separate outputs")
        first.setdefault(path.name, path)


def _replace(output: Path, write) -> None:
    """Folder formats refuse to write into a non-empty folder; this run's own earlier output (its
    images are in the journal) is moved aside, and back if writing fails."""
    if not (output.is_dir() and any(output.iterdir())):
        write()
        return
    aside = output.with_name(f".{output.name}.previous")
    shutil.rmtree(aside, ignore_errors=True)
    output.rename(aside)
    try:
        write()
    except BaseException:
        if not output.exists():
            aside.rename(output)
        raise
    shutil.rmtree(aside)


_worker_labeler = None  # in a worker process: its AutoLabeler, or why it could not be built


def _pool(workers: int, arguments: LabelerArguments):
    """Worker processes, each loading the model once (spawned: a forked copy of a loaded model's
    threads and handles is not safe)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _start_worker, (arguments,))


def _start_worker(arguments: LabelerArguments) -> None:
    global _worker_labeler
    try:
        _worker_labeler = AutoLabeler(*arguments)
    except Exception as error:  # noqa: BLE001 - raised with its message by the first batch, in the parent
        _worker_labeler = error


def _predict_batch(paths: list[Path]) -> list[tuple]:
    if isinstance(_worker_labeler, Exception):
        raise _worker_labeler
    return list(_worker_labeler.stream(paths))


def _predict_into(journal: Journal, entries: Iterable[dict], count: int, batch_size: int) -> None:
    pending = []
    for entry in track(entries, "predicting", total=count):
        pending.append(entry)
        if len(pending) >= batch_size:
            journal.append(pending)
            pending = []
    journal.append(pending)


def _seed_from_output(journal: Journal, output: Path, output_format: str, images_dir: Path | None) -> None:
    """An existing output: its images count as done and are kept in the new one (formats without
    image sizes, YOLO, measure the images in `images_dir`)."""
    try:
        existing = load(output, output_format, images_dir)
    except AnnotationError as error:
        raise AnnotationError(f"the output exists and cannot be read as {output_format} ({error}); "
                              "use --force to overwrite it", str(output)) from None
    journal.append([Journal.entry(Path(item.image.file_name), item, None) for item in existing.items])


def write_failures(output: Path, failures: list[dict]) -> Path:
    report = Path(f"{output}.failures.json")
    with atomic_file(report) as handle:
        handle.write(json.dumps(failures, indent=1) + "\n")
    return report
