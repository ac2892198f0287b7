"""Server-side paths for jobs and batches: only under the allowed root, never outside.

Every path is resolved (symlinks and ``..``) before it is compared with the
root, and so is every file a folder walk finds: a symlink inside an
allowed folder cannot lead outside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...model.media import media_files
from ..core.problems import Problem, shortened

MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
NO_NUL = r"^[^\x00]+$"  # the schema's pattern for a path: any characters but NUL


def resolve_under_root(given: str, root: Path | None) -> Path:
    """The real path of ``given`` (relative to root, or absolute) if it lies under root.

    Raises:
        Problem: 403 (paths off, or outside the root), 404 (nothing there),
            404 (nothing there, or a name the file system refuses), 422 (empty, a NUL byte, too long).
    """
    if root is None:
        raise Problem(403, "Forbidden", "server-side paths are disabled (set UNMASK_ALLOWED_ROOT)", "paths_disabled")
    if not given or "\x00" in given:
        raise Problem(422, "Invalid request", "path is empty or holds a NUL byte", "invalid_request")
    if len(given) > MAX_PATH_CHARS:
        raise Problem(422, "Invalid request", f"path is {len(given)} characters long, over the limit of {MAX_PATH_CHARS}", "invalid_request")
    base = root.resolve()
    try:
        path = (base / given).resolve()  # an absolute `given` replaces base, then must still be under it
        if not path.is_relative_to(base):
            raise Problem(403, "Forbidden", f"{shortened(given)}: outside the allowed root", "path_outside_root")
        exists = path.exists()
    # A name too long for the file system, a symlink loop (RuntimeError from Python 3.11's resolve()) ...: nothing can be there.
    except (OSError, RuntimeError) as exc:
        raise Problem(404, "Not found", f"{shortened(given)}: no such file or folder (not a usable path: "
                      f"{_why(exc)})", "not_found") from exc
    if not exists:
        raise Problem(404, "Not found", f"{shortened(given)}: no such file or folder under the allowed root", "not_found")
    return path


def expand_media(path: Path, root: Path) -> list[Path]:
    """A file as is; a folder's media files (by suffix), recursively, sorted, each resolved and checked against root.

    Raises:
        Problem: 403 naming the first file found that resolves outside root.
    """
    if path.is_file():
        return [path]
    base = root.resolve()
    found = []
    for file in media_files(path):
        real = file.resolve()
        if not real.is_relative_to(base):
            raise Problem(403, "Forbidden", f"{file.relative_to(path)} in {path.name or path}: a link to outside the allowed root",
                          "path_outside_root")
        found.append(real)
    return found


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return os.strerror(exc.errno or 0) or str(exc)
    return "a symlink loop"
