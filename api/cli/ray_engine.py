"""`--engine ray`: the same predictions on a Ray cluster. Ray Data reads the image list in blocks
and runs `map_batches` on a pool of actors, each holding one pipeline (one actor per CPU slot,
or per GPU when the device is CUDA); results come back in input order, as the same journal
entries the local engine writes, so the output is identical. `RAY_ADDRESS` (or `address=`) joins
an existing cluster; otherwise a local Ray starts. Every node must see the images at the same
paths and the weights in its OPENAUTOGLM_MODEL_DIR (or download them).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator


def entries(arguments, paths: list[Path], address: str | None = None, workers: int | None = None) -> Iterator[dict]:
    """Journal entries (cli.predict.Journal.entry) for `paths`, in order; `arguments`
    (autolabel.LabelerArguments) is what each actor builds its AutoLabeler from."""
    if not paths:
        return
    import ray

    logging.getLogger("ray").setLevel(logging.ERROR)  # Ray's INFO lines would bury the progress bar
    warnings.filterwarnings("ignore", module="ray.data")
    ours = not ray.is_initialized()
    if ours:
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR,
                 runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith("OPENAUTOGLM_")}})
    try:
        yield from _run(ray, arguments, paths, workers)
    finally:
        if ours:
            ray.shutdown()


def _run(ray, arguments, paths: list[Path], workers: int | None) -> Iterator[dict]:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the output lists images in input order
    context.enable_progress_bars = False
    gpu, batch_size = str(arguments.device or "").startswith("cuda"), arguments.batch_size
    slots = int(ray.cluster_resources().get("GPU" if gpu else "CPU", 1))
    dataset = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=max(1,
                                                                                             len(paths) // batch_size))
    predicted = dataset.map_batches(_Labeler, fn_constructor_args=(arguments,), batch_size=batch_size,
                                    batch_format="pandas", concurrency=workers or max(1, slots),
                                    num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1)
    for row in predicted.iter_rows():
        yield json.loads(row["entry"])


class _Labeler:
    """One Ray actor: loads the pipeline once, predicts batch after batch."""

    def __init__(self, arguments):
        from openautoglm.autolabel import AutoLabeler

        self.labeler = AutoLabeler(*arguments)

    def __call__(self, batch):
        from openautoglm.cli.predict import Journal

        paths = [Path(p) for p in batch["path"]]
        batch["entry"] = [json.dumps(Journal.entry(*result)) for result in self.labeler.stream(paths)]
        return batch
