"""Where the benches find the shared data: ``--data``, else ``$UNMASK_SHARED_DATA``, else ``shared/data`` beside
the checkout (the tests' rule, ``unmask.training.datasets.shared_data_dir``). A missing folder stops the bench
with one line instead of an empty glob and a statistics traceback later."""

from __future__ import annotations

from pathlib import Path


def shared_data(given: Path | None = None) -> Path:
    from unmask.training.datasets import DataError, shared_data_dir

    try:
        folder = given or shared_data_dir()
    except DataError as exc:
        raise SystemExit(f"bench: {exc}") from None
    if not (folder / "labels.csv").is_file():
        raise SystemExit(f"bench: {folder} is not the shared data folder (no labels.csv): pass --data or set UNMASK_SHARED_DATA")
    return folder
