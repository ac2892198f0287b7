"""Server-side paths for jobs and batches: only under the allowed root, never outside."""

from __future__ import annotations

from pathlib import Path

from ...model.media import media_files
from ..core.problems import Problem


def resolve_under_root(given: str, root: Path | None) -> Path:
    """The real path of ``given`` (relative to root, or absolute) if it lies under root.

    Symlinks and ``..`` are resolved first, so neither can lead outside.
    """
    if root is None:
        raise Problem(403, "Forbidden", "server-side paths are disabled (set UNMASK_ALLOWED_ROOT)", "paths-disabled")
    if not given or "\x00" in given:
        raise Problem(422, "Invalid request", "path is empty or holds a NUL byte", "invalid-request")
    base = root.resolve()
    path = (base / given).resolve()  # an absolute `given` replaces base, then must still be under it
    if not path.is_relative_to(base):
        raise Problem(403, "Forbidden", f"{given}: outside the allowed root", "path-outside-root")
    if not path.exists():
        raise Problem(404, "Not found", f"{given}: no such file or folder under the allowed root", "not-found")
    return path


def expand_media(path: Path) -> list[Path]:
    """A file as is; a folder's media files (by suffix), recursively, sorted."""
    return [path] if path.is_file() else media_files(path)
