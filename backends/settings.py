"""Server settings (Label Studio and CVAT alike), read once from the environment into one typed object."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from openautoglm.model.inference.settings import ModelSettings


@dataclass(frozen=True)
class Settings:
    model: str = "yolo"  # pipeline name or spec file; weights paths come only from here, never from a labeling config
    # weights folder, offline, device, calibration (from_env reads them with everything else)
    models: ModelSettings = field(default_factory=ModelSettings.from_env)
    label_studio_url: str | None = None  # where task images live (/data/upload/..., /data/local-files/...)
    label_studio_api_key: str | None = None  # legacy token or personal access token (refresh token)
    # Label Studio's own LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, where the backend sees the same files:
    # /data/local-files/ images are read from it, not downloaded through Label Studio
    local_files_root: Path | None = None
    basic_auth_user: str | None = None
    basic_auth_password: str | None = None
    webhook_secret: str | None = None  # Label Studio does not send basic auth with webhooks
    # the server's own files: review store, image cache, gunicorn's control socket
    home: Path = field(default_factory=lambda: data_home(os.environ))
    store_path: Path | str | None = None  # a SQLite file (default: home / reviews.sqlite3) or a postgresql:// URL
    cache_dir: Path | None = None  # default: home / cache / images
    cache_max_bytes: int = 512 * 1024 * 1024
    max_image_bytes: int = 40 * 1024 * 1024
    # a request body above this is answered 413 unread: Label Studio's /predict of 10,000 tasks with
    # their earlier predictions, or a CVAT frame at the image cap as base64, fit
    max_request_bytes: int = 64 * 1024 * 1024
    fetch_timeout_s: float = 20.0
    batch_size: int = 8
    batch_wait_ms: float | None = None  # dynamic batching across requests; None: 10 ms on CUDA, off on CPU
    max_batch: int = 32  # images in one dynamically grouped model batch
    # a /predict answers within this; the rest is predicted in the background and imported (None: no budget)
    predict_budget_s: float | None = 20.0
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    cvat_pipelines: list[str] = field(default_factory=list)  # more pipelines offered to CVAT as detectors
    cvat_labels: list[str] = field(default_factory=list)  # labels for open-vocabulary pipelines in CVAT
    image_hosts: list[str] = field(default_factory=list)  # allow-list of image host patterns; empty: any public host
    access_log: bool = True  # one log line per request
    set_project_version: bool = True  # move a Label Studio project to this model version after its first predictions
    accept_above: float | None = None  # tasks scored at least this are accepted in bulk, but for an audit share
    audit_share: float = 0.05
    refit_every: int = 50  # refit the calibration after this many newly reviewed tasks; 0: never

    @property
    def device(self) -> str | None:
        return self.models.device

    @property
    def calibration_pinned(self) -> bool:
        """OPENAUTOGLM_CALIBRATION names the calibration: no refit replaces it."""
        return bool(self.models.calibration)

    def __post_init__(self):
        # frozen: the derived defaults are set once, here
        if self.store_path is None:
            object.__setattr__(self, "store_path", self.home / "reviews.sqlite3")
        if self.cache_dir is None:
            object.__setattr__(self, "cache_dir", self.home / "cache" / "images")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ

        def number(name: str, default, kind=float):
            return kind(env[name]) if env.get(name) else default

        defaults = cls()
        home = data_home(env)
        return cls(
            home=home,
            model=env.get("OPENAUTOGLM_MODEL", defaults.model),
            models=ModelSettings.from_env(env),
            label_studio_url=(env.get("LABEL_STUDIO_URL") or "").rstrip("/") or None,
            label_studio_api_key=env.get("LABEL_STUDIO_API_KEY") or None,
            local_files_root=Path(env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"])
            if env.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT") else None,
            basic_auth_user=env.get("BASIC_AUTH_USER") or None,
            basic_auth_password=env.get("BASIC_AUTH_PASS") or None,
            webhook_secret=env.get("OPENAUTOGLM_WEBHOOK_SECRET") or None,
            store_path=_store(env.get("OPENAUTOGLM_STORE")),
            cache_dir=Path(env["OPENAUTOGLM_CACHE_DIR"]) if env.get("OPENAUTOGLM_CACHE_DIR") else None,
            cache_max_bytes=number("OPENAUTOGLM_CACHE_MAX_MB", defaults.cache_max_bytes // 2**20, int) * 2**20,
            max_image_bytes=number("OPENAUTOGLM_MAX_IMAGE_MB", defaults.max_image_bytes // 2**20, int) * 2**20,
            max_request_bytes=number("OPENAUTOGLM_MAX_REQUEST_MB", defaults.max_request_bytes // 2**20, int) * 2**20,
            fetch_timeout_s=number("OPENAUTOGLM_FETCH_TIMEOUT", defaults.fetch_timeout_s),
            batch_size=number("OPENAUTOGLM_BATCH_SIZE", defaults.batch_size, int),
            batch_wait_ms=number("OPENAUTOGLM_BATCH_WAIT_MS", None),
            max_batch=number("OPENAUTOGLM_MAX_BATCH", defaults.max_batch, int),
            predict_budget_s=_budget(env.get("OPENAUTOGLM_PREDICT_BUDGET_S"), defaults.predict_budget_s),
            synonyms=json.loads(env["OPENAUTOGLM_SYNONYMS"]) if env.get("OPENAUTOGLM_SYNONYMS") else {},
            cvat_pipelines=_names(env.get("OPENAUTOGLM_CVAT_PIPELINES")),
            cvat_labels=_names(env.get("OPENAUTOGLM_CVAT_LABELS")),
            image_hosts=_names(env.get("OPENAUTOGLM_IMAGE_HOSTS")),
            access_log=_switch(env.get("OPENAUTOGLM_ACCESS_LOG")),
            set_project_version=_switch(env.get("OPENAUTOGLM_SET_PROJECT_VERSION")),
            accept_above=number("OPENAUTOGLM_ACCEPT_ABOVE", None),
            audit_share=number("OPENAUTOGLM_AUDIT_SHARE", defaults.audit_share),
            refit_every=number("OPENAUTOGLM_REFIT_EVERY", defaults.refit_every, int),
        )


def data_home(env) -> Path:
    """Where the server keeps its files when no path is given: OPENAUTOGLM_HOME, else the user's
    data folder ($XDG_DATA_HOME/openautoglm, ~/.local/share/openautoglm), never the current directory."""
    if env.get("OPENAUTOGLM_HOME"):
        return Path(env["OPENAUTOGLM_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME")
    return (Path(base) if base else Path.home() / ".local" / "share") / "openautoglm"


def batch_wait_ms(settings: "Settings") -> float:
    """The dynamic batching wait: as set, else 10 ms on CUDA (one batch of n costs about one of 1)
    and off on CPU (n images cost n times one: grouping would only add the wait)."""
    if settings.batch_wait_ms is not None:
        return max(0.0, settings.batch_wait_ms)
    device = settings.device or ""
    if not device:
        torch = sys.modules.get("torch")  # loaded by the pipeline if it uses torch; never imported here
        device = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    return 10.0 if device.startswith("cuda") else 0.0


def _store(value: str | None) -> Path | str | None:
    from openautoglm.model.reviews.database import is_url

    if not (value or "").strip():
        return None
    return value.strip() if is_url(value.strip()) else Path(value)


def _budget(value: str | None, default: float | None) -> float | None:
    """Seconds, or 0 / off for none."""
    if not (value or "").strip():
        return default
    if value.strip().lower() in ("off", "none"):
        return None
    return float(value) or None


def _switch(value: str | None, default: bool = True) -> bool:
    return default if not (value or "").strip() else value.strip().lower() not in ("0", "false", "no", "off")


def _names(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]
