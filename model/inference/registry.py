"""Known model names -> where their weights come from, and resolving a name to weights on disk.

Resolution order: a local path given as the name; then the model directory
(`OPENAUTOGLM_MODEL_DIR`, where each model has its own folder or file); then the hub id or the
ultralytics download name when online. Offline and missing: one ModelError naming the model, the
file expected and where to put it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openautoglm.model.errors import ModelError
from openautoglm.model.inference.settings import ModelSettings


@dataclass(frozen=True)
class KnownModel:
    name: str
    family: str  # "ultralytics", "yolox", "zero-shot", "sam", "vlm"
    local: tuple[str, ...]  # paths tried under the model directory, first found wins
    remote: str | None  # hub id or ultralytics download name; None when only local files work
    licence: str
    verified: str  # "real weights" or "tiny models only": how this code path is tested here
    parser: str | None = None  # VLM output parser (vlm_parsers.PARSERS key)


KNOWN: dict[str, KnownModel] = {m.name: m for m in [
    KnownModel("yolov8n", "ultralytics", ("yolov8n-coco/yolov8n_int8.tflite", "yolov8n.pt"), "yolov8n.pt",
               "AGPL-3.0", "real weights"),
    KnownModel("yolo11n", "ultralytics", ("yolo11n.pt",), "yolo11n.pt", "AGPL-3.0", "code path of yolov8n"),
    KnownModel("owlv2-base", "zero-shot", ("owlv2-base-patch16-ensemble",), "google/owlv2-base-patch16-ensemble",
               "Apache-2.0", "tiny models only"),
    KnownModel("grounding-dino-tiny", "zero-shot", ("grounding-dino-tiny",), "IDEA-Research/grounding-dino-tiny",
               "Apache-2.0", "tiny models only"),
    KnownModel("mm-grounding-dino-tiny", "zero-shot", ("mm_grounding_dino_tiny_o365v1_goldg",),
               "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg", "Apache-2.0", "code path of grounding-dino"),
    KnownModel("sam-vit-base", "sam", ("sam-vit-base",), "facebook/sam-vit-base", "Apache-2.0", "tiny models only"),
    KnownModel("sam2.1-hiera-tiny", "sam", ("sam2.1-hiera-tiny",), "facebook/sam2.1-hiera-tiny", "Apache-2.0",
               "tiny models only"),
    KnownModel("mobile-sam", "ultralytics-sam", ("mobile_sam.pt",), "mobile_sam.pt", "Apache-2.0",
               "tiny models only"),
    KnownModel("qwen2.5-vl-3b", "vlm", ("Qwen2.5-VL-3B-Instruct",), "Qwen/Qwen2.5-VL-3B-Instruct",
               "Qwen Research licence", "tiny models only", "qwen2_5_vl"),
    KnownModel("qwen3-vl-2b", "vlm", ("Qwen3-VL-2B-Instruct",), "Qwen/Qwen3-VL-2B-Instruct", "Apache-2.0",
               "tiny models only", "qwen3_vl"),
    KnownModel("glm-4.1v-9b-thinking", "vlm", ("GLM-4.1V-9B-Thinking",), "zai-org/GLM-4.1V-9B-Thinking", "MIT",
               "tiny models only", "glm4v"),
    KnownModel("glm-4.6v-flash", "vlm", ("GLM-4.6V-Flash",), "zai-org/GLM-4.6V-Flash", "MIT",
               "tiny models only (GLM-4V architecture)", "glm4v"),
    KnownModel("yolox-nano", "yolox", ("yolox-nano-coco/yolox_nano.onnx", "yolox_nano.onnx"), None,
               "Apache-2.0 (upstream weights)", "real weights"),
]}


def find_local(name: str, directory: Path | None) -> Path | None:
    """The weights of `name` on this machine (a path given directly, or under the model directory)."""
    as_path = Path(name).expanduser()
    if as_path.exists():
        return as_path
    known = KNOWN.get(name)
    if known is None or directory is None:
        return None
    for relative in known.local:
        candidate = directory / relative
        if candidate.exists():
            return candidate
    return None


def resolve(name: str, settings: ModelSettings) -> tuple[KnownModel | None, str]:
    """(registry entry or None for a bare path, what to load: a local path or a remote id)."""
    known = KNOWN.get(name)
    local = find_local(name, settings.model_dir)
    if local is not None:
        return known, str(local)
    if known is None:
        raise ModelError(f"unknown model {name!r}: not a file or folder, and not one of {', '.join(KNOWN)}")
    if known.remote is None or settings.offline:
        where = settings.model_dir or "a folder named by OPENAUTOGLM_MODEL_DIR"
        reason = "no download source" if known.remote is None else "offline"
        raise ModelError(f"model {name!r} not found ({reason}): put {known.local[0]} under {where}")
    return known, known.remote


def describe(settings: ModelSettings) -> list[dict]:
    """Every known model with whether its weights are present here (for `openautoglm models`)."""
    rows = []
    for known in KNOWN.values():
        local = find_local(known.name, settings.model_dir)
        rows.append({"name": known.name, "family": known.family, "licence": known.licence,
                     "present": str(local) if local else None, "remote": known.remote, "verified": known.verified})
    return rows
