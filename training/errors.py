"""Typed training errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class TrainingError(Exception):
    """A training/eval problem the user can fix (bad config, missing data or extra)."""


class ConfigError(TrainingError, ValueError):
    """A bad config file or option value."""


class MissingExtraError(TrainingError, ImportError):
    """A package of the ``train`` extra is not installed."""


def require(module: str, feature: str = "training"):
    """Import ``module`` or raise MissingExtraError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the 'train' extra ({exc.name or module} is missing): pip install 'unmask[train]'"
        ) from None
