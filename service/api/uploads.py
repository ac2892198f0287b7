"""Uploads to disk in chunks, with a size limit, and a content sniff.

Files being written carry the writing process's id in their name
(``unmask-PID-*`` spool folders, ``part-HOST-PID-*`` job uploads), so a
process starting later removes what a killed one left (``remove_leftovers``)
without touching a live process's files. Job uploads name the host too: the
media folder may be a volume that processes of other hosts write into.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fastapi import UploadFile

from ...model.errors import MediaError
from ...model.media import sniff
from ...model.printable import printable
from ...model.results import MediaKind
from ..core.problems import Problem, media_problem
from ..core.processes import HOST_TAG, process_alive

log = logging.getLogger(__name__)
CHUNK = 1 << 20
SPOOL_PREFIX = "unmask-"  # synchronous uploads: one folder per request under tmp_dir
PART_PREFIX = f"part-{HOST_TAG}-"  # a job upload being received, in the media folder


def owned_name(prefix: str) -> str:
    """``prefix`` + this process's id + a dash: the start of a leftover-safe name."""
    return f"{prefix}{os.getpid()}-"


def remove_leftovers(folder: Path, prefix: str) -> int:
    """Delete ``prefix``PID-* entries of processes that no longer run; return how many."""
    removed = 0
    for entry in folder.glob(prefix + "*") if folder.is_dir() else []:
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("removed %d leftovers of stopped processes in %s", removed, folder)
    return removed


def save_upload(upload: UploadFile, dest: Path, max_bytes: int, pointer: str = "") -> tuple[str, MediaKind]:
    """Copy one upload to ``dest`` (at most ``max_bytes``); return (name, kind) or raise a Problem.

    ``name`` is the file name as records and problems show it: its base name
    only, with control and invisible format characters (a NUL, a
    right-to-left override) escaped.
    """
    name = printable(Path(upload.filename or "").name) or "upload"  # "" or "." name nothing
    size = 0
    try:
        with dest.open("wb") as out:
            while chunk := upload.file.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise Problem(413, "Limit exceeded", f"{name}: upload is over the limit of {max_bytes} bytes{pointer}", "limit_exceeded")
                out.write(chunk)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise Problem(507, "Insufficient storage", "the server has no disk space left for this upload; retry later",
                      "insufficient-storage", headers={"Retry-After": "60"}) from exc
    with dest.open("rb") as fh:
        try:
            kind, _ = sniff(fh.read(64))
        except MediaError as exc:
            raise media_problem(exc, name) from exc
    return name, kind


@contextmanager
def saved_uploads(
    files: list[UploadFile], max_bytes: int, tmp_dir: Path | None = None, pointer: str = ""
) -> Iterator[list[tuple[str, Path, MediaKind]]]:
    """Copy each upload to a private temp folder; yield (name, path, kind); delete after."""
    folder = Path(tempfile.mkdtemp(prefix=owned_name(SPOOL_PREFIX), dir=tmp_dir))
    try:
        saved = []
        for i, upload in enumerate(files):
            path = folder / str(i)
            name, kind = save_upload(upload, path, max_bytes, pointer)
            saved.append((name, path, kind))
        yield saved
    finally:
        shutil.rmtree(folder, ignore_errors=True)
