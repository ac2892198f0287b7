"""Service settings: environment variables ``UNMASK_*`` (or flags of ``unmask serve``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ...model.config import ScoringConfig

MB = 1024 * 1024
# A callback_hosts entry: a DNS name, an IPv4 or IPv6 address (bracketed or not), optionally a /prefix.
HOST_ENTRY = re.compile(r"[A-Za-z0-9_.-]+\.?|\[?[0-9A-Fa-f:.]+\]?(/[0-9]{1,3})?")
DEFAULTS = ScoringConfig()  # the scoring defaults are stated there, once


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "unmask"


class Settings(BaseSettings):
    """Every knob of the service with its default; the README lists them."""

    model_config = SettingsConfigDict(env_prefix="UNMASK_", protected_namespaces=())

    # model
    model: str = Field("default", description="bundled model name or checkpoint path")
    device: Optional[Literal["cpu", "cuda"]] = Field(None, description="None: CUDA when present")
    backend: Literal["auto", "torch", "onnx"] = DEFAULTS.backend
    aggregation: str = Field(DEFAULTS.aggregation, description="track score strategy: confident, mean, max")
    frames: int = Field(DEFAULTS.frames, ge=1, le=512, description="frames sampled evenly per video")
    sample_fps: Optional[float] = Field(DEFAULTS.sample_fps, gt=0, le=60, description="sample this many frames per second, at most `frames` (a request's or this setting)")
    uncertain_margin: Optional[float] = Field(DEFAULTS.uncertain_margin, ge=0, le=0.5, description="a score within this "
                                              "of the threshold is uncertain (0: none is); unset: the model's own band")
    warmup: bool = True
    # speed (see ScoringConfig): detection on fewer pixels, decoding ahead
    detect_every: int = Field(DEFAULTS.detect_every, ge=1, description="full-frame face detection on every N-th sampled frame; regions around faces between")
    region_min_face: float = Field(DEFAULTS.region_min_face, ge=0, lt=1, description="in the region around a followed face, MTCNN looks for faces of at least this fraction of its size (0: down to detect_min_face)")
    decode_ahead: int = Field(DEFAULTS.decode_ahead, ge=0, description="video frames decoded ahead of detection in a second thread")
    # shortcuts (docs/speed.md): a request may switch each one (its form fields and batch JSON)
    early_stop: bool = Field(DEFAULTS.early_stop, description="score a first pass of frames and stop there when every counted person is clear of the threshold")
    min_face_px: int = Field(DEFAULTS.min_face_px, ge=0, le=1000, description="smallest face searched for, in the file's pixels (0: the detector's floor)")
    adaptive_tta: bool = Field(DEFAULTS.adaptive_tta, description="the flipped view only for faces whose plain score is near the threshold")

    # network
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="comma-separated origins")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated SHA-256 hex digests of accepted keys; empty: no auth"
    )
    log_format: Literal["text", "json"] = "text"
    problem_base_uri: str = Field("/problems/", min_length=1, description="problem types are this + a slug; the "
                                  "default is relative and served by this server as pages that explain each one")

    # limits (jobs and batches)
    max_upload_mb: float = Field(1024.0, gt=0, description="largest upload to /v1/jobs")
    max_pixels: int = Field(DEFAULTS.max_pixels, gt=0, description="largest image or video frame (decompression bombs)")
    max_video_seconds: float = Field(3600.0, gt=0, description="longest video for a job")
    # limits (synchronous endpoints): past these, the answer points to /v1/jobs
    sync_max_upload_mb: float = Field(50.0, gt=0, description="largest upload to /v1/images or /v1/videos")
    sync_max_video_seconds: float = Field(120.0, gt=0, description="longest video for /v1/videos")
    sync_max_pending: int = Field(8, ge=1, description="synchronous requests scoring or waiting at once; more get 503")
    max_files: int = Field(16, ge=1, description="files per synchronous request")
    sync_max_request_pixels: int = Field(
        400_000_000, gt=0, description="pixels one synchronous request may decode, summed over its files (video: frame size x frames sampled)"
    )
    legacy_single_record: bool = Field(False, description="deprecated, for one release: /v1/images and /v1/videos answer "
                                       "one file with its bare record and several with a list, instead of {\"results\": [...]}")
    max_frames: int = Field(128, ge=1, description="largest `frames` a request may ask for")
    # slow bodies (every route): past these, 408 and the connection closed
    body_idle_timeout_s: float = Field(15.0, gt=0, description="the longest wait for the next bytes of a request body")
    body_min_bytes_per_s: float = Field(10_240, ge=0, description="a request body arriving slower than this overall, after "
                                        "body_idle_timeout_s of grace, is refused (0: no floor)")

    # jobs
    data_dir: Path = Field(default_factory=_default_data_dir, description="jobs.db and kept uploads (unless database_url and media_dir say otherwise)")
    database_url: Optional[str] = Field(None, description="the job store: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB "
                                        "(shared by API replicas and workers); None: data_dir/jobs.db")
    media_dir: Optional[Path] = Field(None, description="uploaded job files, a folder every API replica and worker mounts at the "
                                      "same path; None: data_dir/uploads")
    worker: bool = Field(True, description="score queued jobs in this process (false: an API replica; `unmask worker` scores)")
    job_workers: int = Field(1, ge=1, description="jobs scored at once")
    job_lease_s: float = Field(30.0, gt=0, description="a running job whose process has not renewed its claim for this long is "
                               "re-queued (attempt counted) by any live process")
    max_queue: int = Field(10_000, ge=1, description="queued jobs; past this POST /v1/jobs and /v1/batches answer 429 (a batch "
                           "larger than this, 413)")
    max_batch_files: int = Field(10_000, ge=1, description="files in one POST /v1/batches")
    job_timeout_s: float = Field(1800.0, gt=0, description="a running job past this fails")
    job_retention_s: float = Field(86_400.0, ge=0, description="uploads kept after their job ends")
    job_max_attempts: int = Field(2, ge=1, description="starts of a job interrupted by restarts before it fails")
    allowed_root: Optional[Path] = Field(None, description="server-side paths for jobs/batches must lie under this; None: off")
    tmp_dir: Optional[Path] = Field(None, description="where synchronous uploads are spooled (None: system temp)")

    # webhooks
    callback_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated host names, IP addresses or CIDR networks a job's callback_url may "
        "point to; empty: callbacks off. Non-public addresses are reached only when listed"
    )
    callback_secret: Optional[str] = Field(None, description="HMAC-SHA256 key that signs callback bodies (needed with callback_hosts)")
    callback_attempts: int = Field(5, ge=1, le=20, description="tries of a callback before it is marked failed")
    callback_backoff_s: float = Field(2.0, ge=0, description="delay before the first retry; each next one doubles")
    callback_timeout_s: float = Field(10.0, gt=0, description="per try")

    @field_validator("cors_origins", "api_keys", "callback_hosts", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        scheme = value.split(":", 1)[0].lower() if value else None
        if value is not None and (":" not in value or scheme not in ("sqlite", "postgresql", "postgres")):
            raise ValueError(f"unsupported scheme {scheme!r}: use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB")
        return value

    @field_validator("api_keys")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                raise ValueError("api_keys holds SHA-256 hex digests of keys (unmask keygen prints one), not keys")
        return [v.lower() for v in value]

    @field_validator("aggregation")
    @classmethod
    def _known_aggregation(cls, value: str) -> str:
        from ...model.aggregation import STRATEGIES

        return STRATEGIES.check(value)

    @field_validator("callback_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        for entry in value:  # a name, an IP address or a CIDR network; anything else would never match a URL
            if not HOST_ENTRY.fullmatch(entry):
                raise ValueError(f"{entry!r} is not a host name, an IP address or a CIDR network")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.callback_hosts and not self.callback_secret:
            raise ValueError("callback_hosts needs callback_secret: every callback is signed (e.g. openssl rand -hex 32)")
        if self.frames > self.max_frames:
            raise ValueError(f"frames ({self.frames}) is over max_frames ({self.max_frames}), the most a request may ask for")
        return self

    def environment_problem(self) -> str | None:
        """What this machine cannot honour of these settings (None: all fine); ``unmask serve`` checks it before it starts."""
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                return "device: cuda, but no CUDA device is available here (use cpu, or leave it unset)"
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"data_dir: cannot create {self.data_dir}: {exc.strerror or exc}"
        if self.media_dir is not None:
            try:
                self.media_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                return f"media_dir: cannot create {self.media_dir}: {exc.strerror or exc}"
        folders = {"data_dir": self.data_dir, "tmp_dir": self.tmp_dir, "media_dir": self.media_dir}
        for name, folder in folders.items():
            if folder is not None and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
                return f"{name}: {folder} is not a folder this process can write to"
        if self.allowed_root is not None and not self.allowed_root.is_dir():
            return f"allowed_root: {self.allowed_root} is not a folder"
        return None

    def scoring(self) -> ScoringConfig:
        """The ScoringConfig these settings describe (what the predictor is built with)."""
        return ScoringConfig(frames=self.frames, sample_fps=self.sample_fps, aggregation=self.aggregation,
                             backend=self.backend, device=self.device, max_pixels=self.max_pixels,
                             max_duration=self.max_video_seconds, detect_every=self.detect_every,
                             region_min_face=self.region_min_face, decode_ahead=self.decode_ahead,
                             early_stop=self.early_stop, min_face_px=self.min_face_px, adaptive_tta=self.adaptive_tta,
                             uncertain_margin=self.uncertain_margin)

    @property
    def database(self) -> str:
        """The job store's URL: ``database_url``, or the SQLite file in ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir.absolute() / 'jobs.db'}"

    @property
    def uploads_dir(self) -> Path:
        """Where job uploads are kept: ``media_dir``, or ``data_dir/uploads``."""
        return self.media_dir if self.media_dir is not None else self.data_dir / "uploads"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def sync_max_upload_bytes(self) -> int:
        return int(self.sync_max_upload_mb * MB)
