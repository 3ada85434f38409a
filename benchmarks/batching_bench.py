"""Dynamic batching on this machine's CPU: 8 client threads each asking for 12 single-image
predictions (coco128 images, `yolo`), through the server's Predictor, without batching (the
baseline, same run) and with OPENAUTOGLM_BATCH_WAIT_MS=10, max batch 8. Prints images/s of each
and the ratio; on a CPU one batch of n costs about n single images, so no gain is expected, which
is why batching is off there by default (on a GPU it is on).

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/batching_bench.py
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from PIL import Image

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco128-train" / "images"
CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="person"/><Label value="car"/></RectangleLabels></View>')


def throughput(predictor, images: list, clients: int = 8, each: int = 12) -> float:
    def client(offset: int) -> None:
        for n in range(each):
            predictor.predict([{"id": n, "data": {"image": images[(offset * each + n) % len(images)]}}], CONFIG)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients * each / (time.perf_counter() - started)


def main() -> int:
    from openautoglm.backends.label_studio.predictor import Predictor
    from openautoglm.model.inference.pipeline import Pipeline

    pipeline = Pipeline.load("yolo", "cpu")
    loaded = {str(p): Image.open(p).convert("RGB") for p in sorted(IMAGES.glob("*.jpg"))[:32]}
    fetcher = type("Preloaded", (), {"fetch": lambda self, url: loaded[url]})()
    plain = Predictor(pipeline, fetcher)
    batched = Predictor(pipeline, fetcher, batch_wait_ms=10, max_batch=8)
    rounds = {"plain": [], "batched": []}
    for _ in range(2):
        rounds["plain"].append(throughput(plain, list(loaded)))
        rounds["batched"].append(throughput(batched, list(loaded)))
    plain_rate, batched_rate = max(rounds["plain"]), max(rounds["batched"])
    batcher = batched.batcher
    print(f"without batching {plain_rate:.2f} images/s, with (10 ms, max 8) {batched_rate:.2f} images/s "
          f"(mean model batch {batcher.images / batcher.runs:.1f} images); ratio {batched_rate / plain_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
