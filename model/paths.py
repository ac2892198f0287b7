"""Where derived files go, one place for the service and training alike."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Derived files (ONNX exports, training and eval caches): ``$UNMASK_CACHE_DIR`` or ~/.cache/unmask."""
    return Path(os.environ.get("UNMASK_CACHE_DIR", Path.home() / ".cache" / "unmask"))
