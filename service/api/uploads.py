"""Uploads to disk in chunks, with a size limit, and a content sniff."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fastapi import UploadFile

from ...model.errors import MediaError
from ...model.media import sniff
from ...model.results import MediaKind
from ..core.problems import Problem, media_problem

CHUNK = 1 << 20


def save_upload(upload: UploadFile, dest: Path, max_bytes: int, pointer: str = "") -> tuple[str, MediaKind]:
    """Copy one upload to ``dest`` (at most ``max_bytes``); return (name, kind) or raise a Problem."""
    name = Path(upload.filename or dest.name).name
    size = 0
    with dest.open("wb") as out:
        while chunk := upload.file.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise Problem(413, "Limit exceeded", f"{name}: upload is over the limit of {max_bytes} bytes{pointer}", "limit_exceeded")
            out.write(chunk)
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
    folder = Path(tempfile.mkdtemp(prefix="unmask-", dir=tmp_dir))
    try:
        saved = []
        for i, upload in enumerate(files):
            path = folder / str(i)
            name, kind = save_upload(upload, path, max_bytes, pointer)
            saved.append((name, path, kind))
        yield saved
    finally:
        shutil.rmtree(folder, ignore_errors=True)
