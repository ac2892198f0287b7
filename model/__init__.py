"""unmask.model: everything from a file to a MediaResult; knows nothing of HTTP.

Public entry points:
    create_model       build an architecture by registered name
    load_checkpoint    safetensors weights + JSON metadata -> (model, ModelConfig, metadata)
    Predictor          file -> MediaResult (detect, crop, TTA classify, aggregate)
"""

__version__ = "0.1.0"
