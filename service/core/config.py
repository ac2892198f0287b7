"""Service settings: environment variables ``UNMASK_*`` (or flags of ``unmask serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service with its default; see the README's table."""

    model_config = SettingsConfigDict(env_prefix="UNMASK_", protected_namespaces=())

    model: str = Field("default", description="bundled model name or checkpoint path")
    device: Optional[Literal["cpu", "cuda"]] = Field(None, description="None: CUDA when present")
    backend: Literal["auto", "torch", "onnx"] = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    aggregation: str = "confident"
    frames: int = Field(32, ge=1, le=512, description="frames sampled per video")
    max_upload_mb: float = Field(200.0, gt=0, description="largest upload accepted")
    max_files: int = Field(16, ge=1, description="files per synchronous request")
    max_pixels: int = Field(50_000_000, gt=0, description="largest image or frame (decompression bombs)")
    max_video_seconds: float = Field(300.0, gt=0, description="longest video accepted")
    tmp_dir: Optional[Path] = Field(None, description="where uploads are spooled (None: system temp)")
    warmup: bool = True

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
