"""unmask.model: everything from a file to a MediaResult; knows nothing of HTTP.

Public entry points (imported on first use, so ``import unmask.model`` stays light):
    create_model       build an architecture by registered name
    load_checkpoint    safetensors weights + JSON metadata -> (model, CheckpointInfo)
    ScoringConfig      how files are scored (frames, aggregation, backend, detector knobs)
    Predictor          file -> MediaResult (detect, crop, TTA classify, aggregate)
    MediaResult        the record the CLI, the API and jobs return
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": ".architectures",
    "load_checkpoint": ".checkpoint",
    "ScoringConfig": ".config",
    "ModelConfig": ".config",
    "Predictor": ".predictor",
    "MediaResult": ".results",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
