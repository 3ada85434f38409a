"""What model/ takes from its surroundings, as one typed object: where weights live, whether to
stay offline, the default device and the calibration asked for. Read from the environment once
(`from_env`) by whoever builds pipelines: the server's Settings, the command line, AutoLabeler;
then passed down, so no module below reads a variable itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from openautoglm.converters.files import DEFAULT_MAX_PIXELS
from openautoglm.model.errors import ModelError


@dataclass(frozen=True)
class ModelSettings:
    model_dir: Path | None = None  # OPENAUTOGLM_MODEL_DIR: where weights are looked up first
    offline: bool = False  # OPENAUTOGLM_OFFLINE or HF_HUB_OFFLINE: never download
    device: str | None = None  # OPENAUTOGLM_DEVICE; None: CUDA when available, else CPU
    calibration: str = ""  # OPENAUTOGLM_CALIBRATION: '' (look it up), 'raw' (none) or a calibration file
    max_pixels: int = DEFAULT_MAX_PIXELS  # OPENAUTOGLM_MAX_PIXELS: larger images are refused before decoding

    @classmethod
    def from_env(cls, env=None) -> "ModelSettings":
        env = os.environ if env is None else env
        directory = env.get("OPENAUTOGLM_MODEL_DIR")
        return cls(model_dir=Path(directory).expanduser() if directory else None,
                   offline=any(env.get(key, "").lower() in ("1", "true", "yes")
                               for key in ("OPENAUTOGLM_OFFLINE", "HF_HUB_OFFLINE")),
                   device=env.get("OPENAUTOGLM_DEVICE") or None,
                   calibration=env.get("OPENAUTOGLM_CALIBRATION", "").strip(),
                   max_pixels=_positive_int(env, "OPENAUTOGLM_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def _positive_int(env, key: str, default: int) -> int:
    value = env.get(key, "").strip().replace("_", "")
    if not value:
        return default
    if not value.isdigit() or int(value) <= 0:
        raise ModelError(f"{key} must be a positive whole number, not {env[key]!r}")
    return int(value)
