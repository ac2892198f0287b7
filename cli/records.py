"""Writing result records: JSON lines, CSV or a table; resuming an output file."""

from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from ..model.printable import printable
from ..model.results import CSV_FIELDS, MediaResult


def already_scored(path: Path, fmt: str) -> set[str]:
    """Paths recorded in an earlier run's output; a line a killed run cut off is removed."""
    if not path.exists():
        return set()
    if fmt == "jsonl":
        _drop_partial_line(path)
    done = set()
    with path.open(newline="") as fh:
        if fmt == "csv":
            done = {row["path"] for row in csv.DictReader(fh) if row.get("path")}
        else:
            for line in fh:
                try:
                    done.add(json.loads(line)["path"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # the line a killed run was writing
    return done


class RecordWriter:
    """Writes records to a file (or stdout), flushing each so a kill loses at most one."""

    def __init__(self, out: Path | None, fmt: str, append: bool = False) -> None:
        self.out, self.fmt, self.append = out, fmt, append
        self._fh: IO[str] = sys.stdout
        self._csv: csv.DictWriter | None = None

    def __enter__(self) -> "RecordWriter":
        if self.out is not None:
            self._fh = self.out.open("a" if self.append else "w", newline="")
        if self.fmt == "csv":
            self._csv = csv.DictWriter(self._fh, CSV_FIELDS)
            if not self.append:
                self._csv.writeheader()
        elif self.fmt == "table":
            print(f"{'status':8} {'label':5} {'score':>6} {'faces':>5} {'ms':>7}  path", file=self._fh)
        return self

    def write(self, result: MediaResult) -> None:
        if self.fmt == "jsonl":
            self._fh.write(json.dumps(result.to_dict()) + "\n")
        elif self._csv is not None:
            self._csv.writerow(result.to_row())
        else:
            row = result.to_row()
            note = f"  ({row['error_detail']})" if row["error_detail"] else ""
            line = f"{row['status']:8} {row['label'] or '-':5} {row['score'] or '-':>6} {row['faces']:>5} {row['total_ms']:>7}  {row['path']}{note}"
            print(printable(line), file=self._fh)
        self._fh.flush()

    def __exit__(self, *exc) -> None:
        if self.out is not None:
            self._fh.close()


def _drop_partial_line(path: Path) -> None:
    """Cut a half-written last line (a killed run) so appending stays valid JSONL."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


@contextmanager
def progress_bar(total: int, show: bool) -> Iterator:
    from tqdm import tqdm

    with tqdm(total=total, disable=not show, unit="file", file=sys.stderr, dynamic_ncols=True) as bar:
        yield bar
